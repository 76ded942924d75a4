// The x86 CPU model that GCC's libgcc and LLVM's compiler-rt fill in before main and that
// __builtin_cpu_supports reads: zig's compiler-rt (0.17) ships only a stub that leaves it zero.
// Linked only into zig builds (tools/zig/cpu_model.cmake). Only the bits csrc asks about are set:
// AVX (feature 9) and AVX2 (feature 10) of __cpu_features[0] — the same numbering in libgcc
// (enum processor_features) and compiler-rt (enum ProcessorFeatures) — under the test
// chansim::avx2_usable makes (CPU has AVX2, the OS saves YMM state).
#include <cpuid.h>
#include <cstdint>

#include "common/isa.h"

extern "C" {
struct chansim_cpu_model {
  unsigned int vendor, type, subtype;
  unsigned int features[1];
};
__attribute__((visibility("hidden"))) chansim_cpu_model __cpu_model;
__attribute__((visibility("hidden"))) unsigned int __cpu_features2[4];

__attribute__((visibility("hidden"), constructor(101))) int __cpu_indicator_init() {
  unsigned int max_leaf, b, c, d, ecx1, ebx7;
  if (!__get_cpuid(0, &max_leaf, &b, &c, &d) || max_leaf < 7) return 0;
  __get_cpuid(1, &b, &b, &ecx1, &d);
  std::uint64_t xcr0 = 0;
  if (ecx1 & (1u << 27)) {  // OSXSAVE: XGETBV is allowed
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<std::uint64_t>(hi) << 32) | lo;
  }
  __cpuid_count(7, 0, b, ebx7, c, d);
  if (chansim::avx2_usable(max_leaf, ecx1, xcr0, ebx7)) __cpu_model.features[0] |= (1u << 9) | (1u << 10);
  return 0;
}
}

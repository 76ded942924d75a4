// Run-time choice of the SIMD kernel set, shared by every layer: AVX2 when the
// CPU has it and CHANSIM_ISA is not "baseline" (which tests use to compare sets).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#if defined(CHANSIM_HAVE_AVX2_TU)
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>  // __cpuid, __cpuidex, _xgetbv
#elif defined(__GNUC__) || defined(__clang__)
#include <cpuid.h>   // __get_cpuid_count
#endif
#endif

namespace chansim {

// AVX2 is usable when the CPU has it (CPUID.(EAX=7,ECX=0):EBX bit 5) and the
// OS saves the YMM registers across context switches: CPUID.1:ECX has OSXSAVE
// (bit 27) and AVX (bit 28), and XCR0 enables SSE and AVX state (bits 1, 2).
// This is the test GCC's __builtin_cpu_supports("avx2") makes (tests/cpp/
// test_isa.cpp checks the two agree). xcr0 is read only when OSXSAVE is set
// (XGETBV faults otherwise).
constexpr bool avx2_usable(uint32_t max_leaf, uint32_t leaf1_ecx, uint64_t xcr0, uint32_t leaf7_ebx) {
  const uint32_t osxsave_avx = (1u << 27) | (1u << 28);
  return max_leaf >= 7 && (leaf1_ecx & osxsave_avx) == osxsave_avx && (xcr0 & 6u) == 6u &&
         (leaf7_ebx & (1u << 5)) != 0;
}

// Whether this CPU runs the AVX2 kernel set: false when the build has none
// (not x86-64). The registers are read here, the same way on every compiler,
// rather than through __builtin_cpu_supports: that reads a CPU model the
// compiler's runtime fills in before main, and zig's compiler-rt leaves it
// zero (so would any runtime that stubs it), which would silently turn the
// AVX2 kernels off. Callers keep the answer (CPUID is slow in a VM).
inline bool cpu_has_avx2() {
#if !defined(CHANSIM_HAVE_AVX2_TU)
  return false;
#elif defined(_MSC_VER) && !defined(__clang__)
  int r[4];
  __cpuid(r, 0);
  const uint32_t max_leaf = static_cast<uint32_t>(r[0]);
  if (max_leaf < 7) return false;
  __cpuid(r, 1);
  const uint32_t ecx1 = static_cast<uint32_t>(r[2]);
  const uint64_t xcr0 = (ecx1 & (1u << 27)) ? _xgetbv(0) : 0;
  __cpuidex(r, 7, 0);
  return avx2_usable(max_leaf, ecx1, xcr0, static_cast<uint32_t>(r[1]));
#elif defined(__GNUC__) || defined(__clang__)  // clang-cl and MinGW included
  unsigned a, b, c, d;
  if (!__get_cpuid_count(0, 0, &a, &b, &c, &d) || a < 7) return false;
  const uint32_t max_leaf = a;
  __get_cpuid_count(1, 0, &a, &b, &c, &d);
  const uint32_t ecx1 = c;
  uint64_t xcr0 = 0;
  if (ecx1 & (1u << 27)) {
    // XGETBV as bytes: the _xgetbv intrinsic would need -mxsave on this translation unit.
    uint32_t lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0u));
    xcr0 = (static_cast<uint64_t>(hi) << 32) | lo;
  }
  __get_cpuid_count(7, 0, &a, &b, &c, &d);
  return avx2_usable(max_leaf, ecx1, xcr0, b);
#else
  return false;  // an unknown x86-64 compiler: the portable baseline
#endif
}

inline bool use_avx2() {
  const char* force = std::getenv("CHANSIM_ISA");
  if (force && std::strcmp(force, "baseline") == 0) return false;
  return cpu_has_avx2();
}

}  // namespace chansim

// Run-time choice of the SIMD kernel set, shared by every layer: AVX2 when the
// CPU has it and CHANSIM_ISA is not "baseline" (which tests use to compare sets).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#if defined(CHANSIM_HAVE_AVX2_TU) && defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>  // __cpuid, __cpuidex, _xgetbv
#endif

namespace chansim {

// AVX2 is usable when the CPU has it (CPUID.(EAX=7,ECX=0):EBX bit 5) and the
// OS saves the YMM registers across context switches: CPUID.1:ECX has OSXSAVE
// (bit 27) and AVX (bit 28), and XCR0 enables SSE and AVX state (bits 1, 2).
// This is the test GCC's __builtin_cpu_supports("avx2") makes; written out so
// the MSVC path can make it (tests/cpp/test_isa.cpp checks the two agree).
// xcr0 is read only when OSXSAVE is set (XGETBV faults otherwise).
constexpr bool avx2_usable(uint32_t max_leaf, uint32_t leaf1_ecx, uint64_t xcr0, uint32_t leaf7_ebx) {
  const uint32_t osxsave_avx = (1u << 27) | (1u << 28);
  return max_leaf >= 7 && (leaf1_ecx & osxsave_avx) == osxsave_avx && (xcr0 & 6u) == 6u &&
         (leaf7_ebx & (1u << 5)) != 0;
}

// Whether this CPU runs the AVX2 kernel set (false when the build has none:
// not x86-64). GCC and Clang (clang-cl and MinGW included) ask their runtime;
// MSVC has no __builtin_cpu_supports, so it reads CPUID and XCR0 itself.
inline bool cpu_has_avx2() {
#if !defined(CHANSIM_HAVE_AVX2_TU)
  return false;
#elif defined(__GNUC__) || defined(__clang__)
  return __builtin_cpu_supports("avx2");
#elif defined(_MSC_VER)
  int r[4];
  __cpuid(r, 0);
  const uint32_t max_leaf = static_cast<uint32_t>(r[0]);
  if (max_leaf < 7) return false;
  __cpuid(r, 1);
  const uint32_t ecx1 = static_cast<uint32_t>(r[2]);
  if (!(ecx1 & (1u << 27))) return false;
  const uint64_t xcr0 = _xgetbv(0);
  __cpuidex(r, 7, 0);
  return avx2_usable(max_leaf, ecx1, xcr0, static_cast<uint32_t>(r[1]));
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

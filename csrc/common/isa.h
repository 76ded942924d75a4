// Run-time choice of the SIMD kernel set, shared by every layer: AVX2 when the
// CPU has it and CHANSIM_ISA is not "baseline" (which tests use to compare sets).
#pragma once
#include <cstdlib>
#include <cstring>

namespace chansim {

// Whether this CPU runs the AVX2 kernel set. GCC and Clang ask the CPU; other
// compilers use the portable baseline (an MSVC port would ask __cpuidex and
// _xgetbv here, and build the AVX2 sources with /arch:AVX2).
inline bool cpu_has_avx2() {
#if defined(CHANSIM_HAVE_AVX2_TU) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

inline bool use_avx2() {
  const char* force = std::getenv("CHANSIM_ISA");
  if (force && std::strcmp(force, "baseline") == 0) return false;
  return cpu_has_avx2();
}

}  // namespace chansim

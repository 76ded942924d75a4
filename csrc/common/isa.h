// Run-time choice of the SIMD kernel set, shared by every layer: AVX2 when the
// CPU has it and CHANSIM_ISA is not "baseline" (which tests use to compare sets).
#pragma once
#include <cstdlib>
#include <cstring>

namespace chansim {

inline bool use_avx2() {
#if defined(CHANSIM_HAVE_AVX2_TU)
  const char* force = std::getenv("CHANSIM_ISA");
  if (force && std::strcmp(force, "baseline") == 0) return false;
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

}  // namespace chansim

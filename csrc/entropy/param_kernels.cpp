#include "param_kernels.h"

#include <cstdlib>
#include <cstring>

namespace chansim {
namespace rans {

const ParamKernels& param_kernels() {
  static const ParamKernels& k = [] () -> const ParamKernels& {
#if defined(CHANSIM_HAVE_AVX2_TU)
    const char* force = std::getenv("CHANSIM_ISA");
    const bool want_baseline = force && std::strcmp(force, "baseline") == 0;
    if (!want_baseline && __builtin_cpu_supports("avx2")) return kernels::param_avx2();
#endif
    return kernels::param_baseline();
  }();
  return k;
}

}  // namespace rans
}  // namespace chansim

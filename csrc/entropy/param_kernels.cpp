#include "param_kernels.h"

#include "common/isa.h"

namespace chansim {
namespace rans {

const ParamKernels& param_kernels() {
  static const ParamKernels& k = [] () -> const ParamKernels& {
#if defined(CHANSIM_HAVE_AVX2_TU)
    if (use_avx2()) return kernels::param_avx2();
#endif
    return kernels::param_baseline();
  }();
  return k;
}

}  // namespace rans
}  // namespace chansim

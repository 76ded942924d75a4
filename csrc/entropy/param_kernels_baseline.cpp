#define CHANSIM_KERNEL_NS baseline
#include "param_kernels.inc"

namespace chansim {
namespace rans {
namespace kernels {
const ParamKernels& param_baseline() { return baseline::table(); }
}  // namespace kernels
}  // namespace rans
}  // namespace chansim

// Compiled with -mavx2 (no FMA: -ffp-contract=off keeps every rounding step).
#define CHANSIM_KERNEL_NS avx2
#include "param_kernels.inc"

namespace chansim {
namespace rans {
namespace kernels {
const ParamKernels& param_avx2() { return avx2::table(); }
}  // namespace kernels
}  // namespace rans
}  // namespace chansim

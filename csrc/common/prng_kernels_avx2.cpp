// Compiled with -mavx2 (no FMA: -ffp-contract=off keeps every rounding step).
#define CHANSIM_KERNEL_NS avx2
#include "prng_kernels.inc"

namespace chansim {
namespace prng {
namespace kernels {
const PrngKernels& prng_avx2() {
  static const PrngKernels k{avx2::words_kernel, avx2::f32_kernel, avx2::f64_kernel};
  return k;
}
}  // namespace kernels
}  // namespace prng
}  // namespace chansim

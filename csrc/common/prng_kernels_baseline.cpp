#define CHANSIM_KERNEL_NS baseline
#include "prng_kernels.inc"

namespace chansim {
namespace prng {
namespace kernels {
const PrngKernels& prng_baseline() {
  static const PrngKernels k{baseline::words_kernel, baseline::f32_kernel, baseline::f64_kernel};
  return k;
}
}  // namespace kernels
}  // namespace prng
}  // namespace chansim

// One instruction set's tile loops of dithered quantization (dq_kernels.inc).
// A tile is m consecutive elements with their dither words w; mu and step are
// per element when *_arr, else mu[0] and step[0]. quantize returns 1 if an
// element is NaN or its index does not fit in int32.
#pragma once
#include <cstddef>
#include <cstdint>

namespace chansim {
namespace dq {
namespace kernels {

struct DqKernels {
  int (*quantize_f32)(const float*, const double*, bool, const double*, bool, const uint32_t*, int32_t*, std::size_t);
  int (*quantize_f64)(const double*, const double*, bool, const double*, bool, const uint32_t*, int32_t*, std::size_t);
  void (*dequantize_f32)(const int32_t*, const double*, bool, const double*, bool, const uint32_t*, float*, std::size_t);
  void (*dequantize_f64)(const int32_t*, const double*, bool, const double*, bool, const uint32_t*, double*,
                         std::size_t);
};

namespace baseline {
const DqKernels& table();
}
#if defined(CHANSIM_HAVE_AVX2_TU)
namespace avx2 {
const DqKernels& table();
}
#endif

}  // namespace kernels
}  // namespace dq
}  // namespace chansim

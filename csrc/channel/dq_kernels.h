// The AVX2 tile bodies of dithered quantization (dq_avx2.cpp). Each handles
// the first floor(m / 4) * 4 elements of a tile (w = the tile's dither words,
// mu / step per element when *_arr, else mu[0] / step[0]) and returns that
// count; the caller finishes the rest with the scalar code of dq.h.
#pragma once
#include <cstddef>
#include <cstdint>

namespace chansim {
namespace dq_avx2 {

// *bad = 1 if an element of the body is NaN or its index outside int32.
std::size_t quantize(const float* x, const double* mu, bool mu_arr, const double* step, bool step_arr,
                     const uint32_t* w, int32_t* k, std::size_t m, int* bad);
std::size_t quantize(const double* x, const double* mu, bool mu_arr, const double* step, bool step_arr,
                     const uint32_t* w, int32_t* k, std::size_t m, int* bad);
std::size_t dequantize(const int32_t* k, const double* mu, bool mu_arr, const double* step, bool step_arr,
                       const uint32_t* w, float* out, std::size_t m);
std::size_t dequantize(const int32_t* k, const double* mu, bool mu_arr, const double* step, bool step_arr,
                       const uint32_t* w, double* out, std::size_t m);

}  // namespace dq_avx2
}  // namespace chansim

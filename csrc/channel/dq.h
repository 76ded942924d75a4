// Dithered (universal) quantization: an exact, O(1)-per-element simulation of
// the additive uniform-noise channel x̂ = x + U(-Δ/2, Δ/2), given a dither shared
// by sender and receiver.
//
//   u_i = uniform_f32(word i of (seed, stream)) - 1/2      (exact, in (-1/2, 1/2))
//   k_i = rint((x_i - μ_i) / Δ_i + u_i)                     (int32)
//   x̂_i = μ_i + Δ_i (k_i - u_i)
//
// All in float64, round-to-nearest-even, in this order (docs/format.md §3).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "common/hd.h"
#include "common/philox.h"
#include "common/transforms.h"

namespace chansim {
namespace dq {

CHANSIM_HD double dq_dither(uint32_t word) { return static_cast<double>(uniform_f32(word)) - 0.5; }

// rint (round half to even) for |v| < 2^51 by the 1.5·2^52 shift: exact in
// round-to-nearest arithmetic, needs no SSE4.1 and vectorises. Larger |v| are
// rejected by dq_index before the result is used.
CHANSIM_HD double dq_rint(double v) { return (v + 6755399441055744.0) - 6755399441055744.0; }

// False when the index does not fit in int32 or the input is not finite.
CHANSIM_HD bool dq_index(double x, double mu, double step, double u, int32_t* k) {
  const double v = (x - mu) / step + u;
  if (!(v >= -2147483647.0 && v <= 2147483647.0)) return false;
  *k = static_cast<int32_t>(dq_rint(v));
  return true;
}

CHANSIM_HD double dq_value(int32_t k, double mu, double step, double u) {
  return mu + step * (static_cast<double>(k) - u);
}

// A per-element parameter array or a scalar broadcast to every element.
template <class T>
struct Param {
  const T* data;
  std::size_t size;  // 1 = broadcast
  CHANSIM_HD T operator[](std::size_t i) const { return data[size == 1 ? 0 : i]; }
};

// Batch forms (threads over the range; results independent of the thread
// count). quantize returns the first element whose index overflows int32, or
// n if none did.
template <class X>
std::size_t dq_quantize(const X* x, Param<double> mu, Param<double> step, uint64_t seed, uint64_t stream,
                        uint64_t start, int32_t* k, std::size_t n);
template <class Y>
void dq_dequantize(const int32_t* k, Param<double> mu, Param<double> step, uint64_t seed, uint64_t stream,
                   uint64_t start, Y* out, std::size_t n);
// The dither values themselves (for entropy models of k given u).
void dq_dithers(uint64_t seed, uint64_t stream, uint64_t start, double* u, std::size_t n);

}  // namespace dq
}  // namespace chansim

// AVX2 bodies of the dithered-quantization tile loops (compiled with -mavx2,
// chosen at run time by dq.cpp through use_avx2()).
//
// Each lane computes exactly the scalar expressions of dq.h in the same order
// (float dither in float arithmetic, then float64 (x - mu) / step + u, the
// 1.5 * 2^52 shift for rint half-even, truncation of the exact integer), with
// no FMA, so the indices and values are bit-identical to the baseline loop and
// to the NumPy definition (tests/test_dq.py). Only whole groups of 4 are done
// here; dq.cpp finishes a tile's remainder with the scalar code. This file
// includes no chansim header on purpose: an inline function compiled here with
// -mavx2 could otherwise be the copy the linker keeps for the baseline code.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "channel/dq_kernels.h"

namespace chansim {
namespace dq_avx2 {
namespace {

inline __m256d load_x(const float* x) { return _mm256_cvtps_pd(_mm_loadu_ps(x)); }
inline __m256d load_x(const double* x) { return _mm256_loadu_pd(x); }

inline void store_y(float* y, __m256d v) { _mm_storeu_ps(y, _mm256_cvtpd_ps(v)); }
inline void store_y(double* y, __m256d v) { _mm256_storeu_pd(y, v); }

// u = float64(uniform_f32(w)) - 1/2, uniform_f32(w) = float(int32(w >> 9)) * 2^-23 + 2^-24
// in float arithmetic (both steps exact).
inline __m256d dither4(const uint32_t* w) {
  const __m128i wi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  const __m128 f = _mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(_mm_srli_epi32(wi, 9)), _mm_set1_ps(1.1920928955078125e-07f)),
                              _mm_set1_ps(5.9604644775390625e-08f));
  return _mm256_sub_pd(_mm256_cvtps_pd(f), _mm256_set1_pd(0.5));
}

template <bool MuArr, bool StepArr, class X>
std::size_t quantize_body(const X* x, const double* mu, const double* step, const uint32_t* w, int32_t* k,
                          std::size_t m, int* bad) {
  const __m256d lo = _mm256_set1_pd(-2147483647.0), hi = _mm256_set1_pd(2147483647.0);
  const __m256d shifter = _mm256_set1_pd(6755399441055744.0);
  const __m256d mu0 = _mm256_set1_pd(mu[0]), step0 = _mm256_set1_pd(step[0]);
  __m256d flagged = _mm256_setzero_pd();
  const std::size_t body = m & ~static_cast<std::size_t>(3);
  for (std::size_t j = 0; j < body; j += 4) {
    const __m256d muv = MuArr ? _mm256_loadu_pd(mu + j) : mu0;
    const __m256d stv = StepArr ? _mm256_loadu_pd(step + j) : step0;
    const __m256d v = _mm256_add_pd(_mm256_div_pd(_mm256_sub_pd(load_x(x + j), muv), stv), dither4(w + j));
    // max_pd returns its second operand for a NaN first operand: NaN -> lo,
    // flagged by the unordered compare and then zeroed, as in the scalar loop.
    __m256d c = _mm256_min_pd(_mm256_max_pd(v, lo), hi);
    flagged = _mm256_or_pd(flagged, _mm256_cmp_pd(v, c, _CMP_NEQ_UQ));
    c = _mm256_and_pd(c, _mm256_cmp_pd(v, v, _CMP_ORD_Q));
    const __m256d r = _mm256_sub_pd(_mm256_add_pd(c, shifter), shifter);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(k + j), _mm256_cvttpd_epi32(r));
  }
  *bad = _mm256_movemask_pd(flagged) != 0;
  return body;
}

template <class Y>
std::size_t dequantize_body(const int32_t* k, const double* mu, bool mu_arr, const double* step, bool step_arr,
                            const uint32_t* w, Y* out, std::size_t m) {
  const __m256d mu0 = _mm256_set1_pd(mu[0]), step0 = _mm256_set1_pd(step[0]);
  const std::size_t body = m & ~static_cast<std::size_t>(3);
  for (std::size_t j = 0; j < body; j += 4) {
    const __m256d muv = mu_arr ? _mm256_loadu_pd(mu + j) : mu0;
    const __m256d stv = step_arr ? _mm256_loadu_pd(step + j) : step0;
    const __m256d kd = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + j)));
    store_y(out + j, _mm256_add_pd(muv, _mm256_mul_pd(stv, _mm256_sub_pd(kd, dither4(w + j)))));
  }
  return body;
}

template <class X>
std::size_t quantize_dispatch(const X* x, const double* mu, bool mu_arr, const double* step, bool step_arr,
                              const uint32_t* w, int32_t* k, std::size_t m, int* bad) {
  if (mu_arr) {
    return step_arr ? quantize_body<true, true>(x, mu, step, w, k, m, bad)
                    : quantize_body<true, false>(x, mu, step, w, k, m, bad);
  }
  return step_arr ? quantize_body<false, true>(x, mu, step, w, k, m, bad)
                  : quantize_body<false, false>(x, mu, step, w, k, m, bad);
}

}  // namespace

std::size_t quantize(const float* x, const double* mu, bool mu_arr, const double* step, bool step_arr,
                     const uint32_t* w, int32_t* k, std::size_t m, int* bad) {
  return quantize_dispatch(x, mu, mu_arr, step, step_arr, w, k, m, bad);
}
std::size_t quantize(const double* x, const double* mu, bool mu_arr, const double* step, bool step_arr,
                     const uint32_t* w, int32_t* k, std::size_t m, int* bad) {
  return quantize_dispatch(x, mu, mu_arr, step, step_arr, w, k, m, bad);
}
std::size_t dequantize(const int32_t* k, const double* mu, bool mu_arr, const double* step, bool step_arr,
                       const uint32_t* w, float* out, std::size_t m) {
  return dequantize_body(k, mu, mu_arr, step, step_arr, w, out, m);
}
std::size_t dequantize(const int32_t* k, const double* mu, bool mu_arr, const double* step, bool step_arr,
                       const uint32_t* w, double* out, std::size_t m) {
  return dequantize_body(k, mu, mu_arr, step, step_arr, w, out, m);
}

}  // namespace dq_avx2
}  // namespace chansim

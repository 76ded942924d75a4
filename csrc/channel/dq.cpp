#include "channel/dq.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "channel/dq_kernels.h"
#include "common/isa.h"
#include "common/parallel.h"
#include "common/prng.h"

namespace chansim {
namespace {

constexpr std::size_t kTile = 1024;
constexpr std::size_t kGrain = 1 << 15;

bool avx2_tiles() {
#if defined(CHANSIM_HAVE_AVX2_TU)
  static const bool on = use_avx2();
  return on;
#else
  return false;
#endif
}

// Visits [0, n) in tiles with the tile's dither words generated in one batch.
template <class Body>
void for_each_dither_tile(uint64_t seed, uint64_t stream, uint64_t start, std::size_t n, Body&& body) {
  parallel_for(n, kGrain, kTile, [&](std::size_t b, std::size_t e) {
    uint32_t w[kTile];
    for (std::size_t t = b; t < e; t += kTile) {
      const std::size_t m = std::min(kTile, e - t);
      fill_words_serial(seed, stream, start + t, w, m);
      body(t, m, w);
    }
  });
}

}  // namespace

// The element loop is branch-free and specialised on whether mu and step are
// arrays or broadcast scalars, so the compiler vectorises it.
template <bool MuArr, bool StepArr, class X>
inline int quantize_tile(const X* x, const double* mu, const double* step, const uint32_t* w, int32_t* k,
                         std::size_t m) {
  int64_t bad = 0;
  std::size_t j = 0;
#if defined(CHANSIM_HAVE_AVX2_TU)
  if (avx2_tiles()) {
    int body_bad = 0;
    j = dq_avx2::quantize(x, mu, MuArr, step, StepArr, w, k, m, &body_bad);
    bad = body_bad;
  }
#endif
  for (; j < m; ++j) {
    const double v = (static_cast<double>(x[j]) - mu[MuArr ? j : 0]) / step[StepArr ? j : 0] + dq_dither(w[j]);
    // Clamp (NaN and out-of-range values are flagged, their index never used).
    double c = v < -2147483647.0 ? -2147483647.0 : v;
    c = c > 2147483647.0 ? 2147483647.0 : c;
    bad += (v != c);  // true for NaN too
    c = (v == v) ? c : 0.0;
    k[j] = static_cast<int32_t>(dq_rint(c));
  }
  return bad != 0;
}

template <class X>
std::size_t dq_quantize(const X* x, Param<double> mu, Param<double> step, uint64_t seed, uint64_t stream,
                        uint64_t start, int32_t* k, std::size_t n) {
  std::atomic<std::size_t> first_bad{n};
  const bool ma = mu.size != 1, sa = step.size != 1;
  for_each_dither_tile(seed, stream, start, n, [&](std::size_t t, std::size_t m, const uint32_t* w) {
    const double* mp = mu.data + (ma ? t : 0);
    const double* sp = step.data + (sa ? t : 0);
    const int bad = ma ? (sa ? quantize_tile<true, true>(x + t, mp, sp, w, k + t, m)
                             : quantize_tile<true, false>(x + t, mp, sp, w, k + t, m))
                       : (sa ? quantize_tile<false, true>(x + t, mp, sp, w, k + t, m)
                             : quantize_tile<false, false>(x + t, mp, sp, w, k + t, m));
    if (bad) {
      for (std::size_t j = 0; j < m; ++j) {
        int32_t tmp;
        if (!dq_index(static_cast<double>(x[t + j]), mu[t + j], step[t + j], dq_dither(w[j]), &tmp)) {
          std::size_t cur = first_bad.load();
          while (t + j < cur && !first_bad.compare_exchange_weak(cur, t + j)) {
          }
          break;
        }
      }
    }
  });
  return first_bad.load();
}

template <class Y>
void dq_dequantize(const int32_t* k, Param<double> mu, Param<double> step, uint64_t seed, uint64_t stream,
                   uint64_t start, Y* out, std::size_t n) {
  for_each_dither_tile(seed, stream, start, n, [&](std::size_t t, std::size_t m, const uint32_t* w) {
    const std::size_t ms = mu.size == 1 ? 0 : 1, ss = step.size == 1 ? 0 : 1;
    std::size_t j = 0;
#if defined(CHANSIM_HAVE_AVX2_TU)
    if (avx2_tiles())
      j = dq_avx2::dequantize(k + t, mu.data + t * ms, ms != 0, step.data + t * ss, ss != 0, w, out + t, m);
#endif
    for (; j < m; ++j) {
      const std::size_t i = t + j;
      out[i] = static_cast<Y>(dq_value(k[i], mu.data[i * ms], step.data[i * ss], dq_dither(w[j])));
    }
  });
}

void dq_dithers(uint64_t seed, uint64_t stream, uint64_t start, double* u, std::size_t n) {
  for_each_dither_tile(seed, stream, start, n, [&](std::size_t t, std::size_t m, const uint32_t* w) {
    for (std::size_t j = 0; j < m; ++j) u[t + j] = dq_dither(w[j]);
  });
}

template std::size_t dq_quantize<float>(const float*, Param<double>, Param<double>, uint64_t, uint64_t, uint64_t,
                                        int32_t*, std::size_t);
template std::size_t dq_quantize<double>(const double*, Param<double>, Param<double>, uint64_t, uint64_t, uint64_t,
                                         int32_t*, std::size_t);
template void dq_dequantize<float>(const int32_t*, Param<double>, Param<double>, uint64_t, uint64_t, uint64_t,
                                   float*, std::size_t);
template void dq_dequantize<double>(const int32_t*, Param<double>, Param<double>, uint64_t, uint64_t, uint64_t,
                                    double*, std::size_t);

}  // namespace chansim

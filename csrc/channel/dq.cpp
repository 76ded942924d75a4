#include "channel/dq.h"

#include <algorithm>
#include <atomic>

#include "common/parallel.h"
#include "common/prng.h"

namespace chansim {
namespace {

constexpr std::size_t kTile = 1024;
constexpr std::size_t kGrain = 1 << 15;

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

template <class X>
std::size_t dq_quantize(const X* x, Param<double> mu, Param<double> step, uint64_t seed, uint64_t stream,
                        uint64_t start, int32_t* k, std::size_t n) {
  std::atomic<std::size_t> first_bad{n};
  for_each_dither_tile(seed, stream, start, n, [&](std::size_t t, std::size_t m, const uint32_t* w) {
    for (std::size_t j = 0; j < m; ++j) {
      const std::size_t i = t + j;
      if (!dq_index(static_cast<double>(x[i]), mu[i], step[i], dq_dither(w[j]), &k[i])) {
        k[i] = 0;
        std::size_t cur = first_bad.load();
        while (i < cur && !first_bad.compare_exchange_weak(cur, i)) {
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
    for (std::size_t j = 0; j < m; ++j) {
      const std::size_t i = t + j;
      out[i] = static_cast<Y>(dq_value(k[i], mu[i], step[i], dq_dither(w[j])));
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

#include "channel/dq.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "channel/dq_kernels.h"
#include "common/isa.h"
#include "common/parallel.h"
#include "common/prng.h"

namespace chansim {
namespace dq {
namespace {

constexpr std::size_t kTile = 1024;
constexpr std::size_t kGrain = 1 << 15;

const kernels::DqKernels& kernel_set() {
#if defined(CHANSIM_HAVE_AVX2_TU)
  static const kernels::DqKernels& k = use_avx2() ? kernels::avx2::table() : kernels::baseline::table();
#else
  static const kernels::DqKernels& k = kernels::baseline::table();
#endif
  return k;
}

int quantize_tile(const float* x, const double* mu, bool ma, const double* step, bool sa, const uint32_t* w,
                  int32_t* k, std::size_t m) {
  return kernel_set().quantize_f32(x, mu, ma, step, sa, w, k, m);
}
int quantize_tile(const double* x, const double* mu, bool ma, const double* step, bool sa, const uint32_t* w,
                  int32_t* k, std::size_t m) {
  return kernel_set().quantize_f64(x, mu, ma, step, sa, w, k, m);
}
void dequantize_tile(const int32_t* k, const double* mu, bool ma, const double* step, bool sa, const uint32_t* w,
                     float* out, std::size_t m) {
  kernel_set().dequantize_f32(k, mu, ma, step, sa, w, out, m);
}
void dequantize_tile(const int32_t* k, const double* mu, bool ma, const double* step, bool sa, const uint32_t* w,
                     double* out, std::size_t m) {
  kernel_set().dequantize_f64(k, mu, ma, step, sa, w, out, m);
}

// Visits [0, n) in tiles with the tile's dither words generated in one batch.
template <class Body>
void for_each_dither_tile(uint64_t seed, uint64_t stream, uint64_t start, std::size_t n, Body&& body) {
  parallel_for(n, kGrain, kTile, [&](std::size_t b, std::size_t e) {
    uint32_t w[kTile];
    for (std::size_t t = b; t < e; t += kTile) {
      const std::size_t m = std::min(kTile, e - t);
      prng::fill_words_serial(seed, stream, start + t, w, m);
      body(t, m, w);
    }
  });
}

}  // namespace

template <class X>
std::size_t dq_quantize(const X* x, Param<double> mu, Param<double> step, uint64_t seed, uint64_t stream,
                        uint64_t start, int32_t* k, std::size_t n) {
  std::atomic<std::size_t> first_bad{n};
  const bool ma = mu.size != 1, sa = step.size != 1;
  for_each_dither_tile(seed, stream, start, n, [&](std::size_t t, std::size_t m, const uint32_t* w) {
    const double* mp = mu.data + (ma ? t : 0);
    const double* sp = step.data + (sa ? t : 0);
    const int bad = quantize_tile(x + t, mp, ma, sp, sa, w, k + t, m);
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
    const bool ma = mu.size != 1, sa = step.size != 1;
    dequantize_tile(k + t, mu.data + (ma ? t : 0), ma, step.data + (sa ? t : 0), sa, w, out + t, m);
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

}  // namespace dq
}  // namespace chansim

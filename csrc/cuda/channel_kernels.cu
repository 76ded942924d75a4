// CUDA kernels for dithered quantization and PFR candidate scoring. The
// per-element math is the CPU path's (dq.h, pfr_math.h, transforms.h), so a
// GPU search picks the same index as the CPU search: arrival times are summed
// serially in candidate order, and the arg-min breaks ties to the smaller index.
#include <cuda_runtime.h>

#include <cfloat>

#include "channel/dq.h"
#include "channel/pfr_math.h"
#include "channel_cuda.h"
#include "common/philox.h"

namespace chansim {
namespace cuda {
namespace {

constexpr int kThreads = 256;

__global__ void dq_quantize_kernel(const float* x, const double* mu, std::size_t mu_n, const double* step,
                                   std::size_t step_n, uint64_t seed, uint64_t stream, uint64_t start, int32_t* k,
                                   std::size_t n, unsigned long long* first_bad) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const dq::Param<double> m{mu, mu_n}, s{step, step_n};
  const double u = dq::dq_dither(philox_word(seed, stream, start + i));
  if (!dq::dq_index(static_cast<double>(x[i]), m[i], s[i], u, &k[i])) {
    k[i] = 0;
    atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

__global__ void dq_dequantize_kernel(const int32_t* k, const double* mu, std::size_t mu_n, const double* step,
                                     std::size_t step_n, uint64_t seed, uint64_t stream, uint64_t start, float* out,
                                     std::size_t n) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const dq::Param<double> m{mu, mu_n}, s{step, step_n};
  out[i] = static_cast<float>(dq::dq_value(k[i], m[i], s[i], dq::dq_dither(philox_word(seed, stream, start + i))));
}

// Serial running sum of arrival times, in candidate order (one thread): the
// same additions as the CPU search, so T is bit-identical.
__global__ void pfr_arrivals_kernel(uint64_t arrival_seed, uint64_t stream, int ordered, uint64_t k, double* t) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double acc = 0.0;
  for (uint64_t n = 1; n <= k; ++n) {
    acc += pfr::pfr_increment(ordered, exponential_f64(philox_u64(arrival_seed, stream, n - 1)), n, k);
    t[n - 1] = acc;
  }
}

// One thread per candidate: score, then a block arg-min (ties to the smaller index).
__global__ void pfr_score_kernel(const double* lin, const double* quad, double c0, std::size_t d, uint64_t seed,
                                 uint64_t stream, const double* t, uint64_t k, double* block_score,
                                 unsigned long long* block_index) {
  __shared__ double s_score[kThreads];
  __shared__ unsigned long long s_index[kThreads];
  const uint64_t n = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x + 1;
  double score = DBL_MAX;
  unsigned long long index = ~0ull;
  if (n <= k) {
    const uint64_t base = (n - 1) * d;
    const double log_r = pfr::pfr_log_ratio(lin, quad, c0, d, [=](std::size_t i) {
      return normal_f32(philox_word(seed, stream, base + i));
    });
    score = pfr::pfr_score(t[n - 1], log_r);
    index = n;
  }
  s_score[threadIdx.x] = score;
  s_index[threadIdx.x] = index;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) {
      const double a = s_score[threadIdx.x], b = s_score[threadIdx.x + w];
      const unsigned long long ia = s_index[threadIdx.x], ib = s_index[threadIdx.x + w];
      if (b < a || (b == a && ib < ia)) {
        s_score[threadIdx.x] = b;
        s_index[threadIdx.x] = ib;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    block_score[blockIdx.x] = s_score[0];
    block_index[blockIdx.x] = s_index[0];
  }
}

unsigned grid_for(uint64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

}  // namespace

int dq_quantize(const float* x, const double* mu, std::size_t mu_n, const double* step, std::size_t step_n,
                uint64_t seed, uint64_t stream, uint64_t start, int32_t* k, std::size_t n,
                unsigned long long* first_bad, void* s) {
  if (n == 0) return 0;
  dq_quantize_kernel<<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(s)>>>(x, mu, mu_n, step, step_n, seed,
                                                                                   stream, start, k, n, first_bad);
  return static_cast<int>(cudaGetLastError());
}

int dq_dequantize(const int32_t* k, const double* mu, std::size_t mu_n, const double* step, std::size_t step_n,
                  uint64_t seed, uint64_t stream, uint64_t start, float* out, std::size_t n, void* s) {
  if (n == 0) return 0;
  dq_dequantize_kernel<<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(s)>>>(k, mu, mu_n, step, step_n, seed,
                                                                                     stream, start, out, n);
  return static_cast<int>(cudaGetLastError());
}

int pfr_search_chunk(const double* lin, const double* quad, double c0, std::size_t d, uint64_t seed,
                     uint64_t cand_stream, uint64_t arrival_stream, int ordered, uint64_t k, double* t_scratch,
                     double* block_score, unsigned long long* block_index, void* s) {
  if (k == 0) return 0;
  auto st = static_cast<cudaStream_t>(s);
  pfr_arrivals_kernel<<<1, 1, 0, st>>>(seed ^ 0x9E3779B97F4A7C15ull, arrival_stream, ordered, k, t_scratch);
  pfr_score_kernel<<<grid_for(k), kThreads, 0, st>>>(lin, quad, c0, d, seed, cand_stream, t_scratch, k, block_score,
                                                      block_index);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace cuda
}  // namespace chansim

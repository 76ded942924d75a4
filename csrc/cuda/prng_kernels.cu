// CUDA variate kernels: one thread per Philox block, the same transforms.h math
// as the CPU kernels (compiled with --fmad=false, so bit-identical).
#include <cuda_runtime.h>

#include "common/philox.h"
#include "common/transforms.h"
#include "prng_cuda.h"

namespace chansim {
namespace cuda {
namespace {

__device__ float variate32(int variate, uint32_t w) {
  switch (variate) {
    case 0: return uniform_f32(w);
    case 1: return normal_f32(w);
    default: return exponential_f32(w);
  }
}

__device__ double variate64(int variate, uint64_t x) {
  switch (variate) {
    case 0: return uniform_f64(x);
    case 1: return normal_f64(x);
    default: return exponential_f64(x);
  }
}

// Block j of the launch covers words 4(first + j) .. 4(first + j) + 3.
__global__ void fill32_kernel(int variate, uint64_t seed, uint64_t stream, uint64_t start, float* out, uint64_t n) {
  const uint64_t first = start >> 2;
  const uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const uint64_t nblocks = ((start & 3u) + n + 3) >> 2;
  if (j >= nblocks) return;
  uint32_t w[4];
  philox_block(seed, stream, first + j, w);
  for (int l = 0; l < 4; ++l) {
    const uint64_t addr = 4 * (first + j) + l;
    if (addr >= start && addr - start < n) out[addr - start] = variate32(variate, w[l]);
  }
}

__global__ void fill64_kernel(int variate, uint64_t seed, uint64_t stream, uint64_t start, double* out, uint64_t n) {
  const uint64_t first = start >> 1;
  const uint64_t j = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const uint64_t nblocks = ((start & 1u) + n + 1) >> 1;
  if (j >= nblocks) return;
  uint32_t w[4];
  philox_block(seed, stream, first + j, w);
  for (int l = 0; l < 2; ++l) {
    const uint64_t addr = 2 * (first + j) + l;
    const uint64_t x = static_cast<uint64_t>(w[2 * l]) | (static_cast<uint64_t>(w[2 * l + 1]) << 32);
    if (addr >= start && addr - start < n) out[addr - start] = variate64(variate, x);
  }
}

constexpr int kThreads = 256;

}  // namespace

int fill_f32(int variate, uint64_t seed, uint64_t stream, uint64_t start, float* out, std::size_t n, void* s) {
  if (n == 0) return 0;
  const uint64_t nblocks = ((start & 3u) + n + 3) >> 2;
  const unsigned grid = static_cast<unsigned>((nblocks + kThreads - 1) / kThreads);
  fill32_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(s)>>>(variate, seed, stream, start, out, n);
  return static_cast<int>(cudaGetLastError());
}

int fill_f64(int variate, uint64_t seed, uint64_t stream, uint64_t start, double* out, std::size_t n, void* s) {
  if (n == 0) return 0;
  const uint64_t nblocks = ((start & 1u) + n + 1) >> 1;
  const unsigned grid = static_cast<unsigned>((nblocks + kThreads - 1) / kThreads);
  fill64_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(s)>>>(variate, seed, stream, start, out, n);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace cuda
}  // namespace chansim

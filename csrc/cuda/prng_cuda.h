// Host launchers of the CUDA variate kernels. Pointers are device pointers;
// the results equal chansim::prng::fill_f32 / fill_f64 bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>

namespace chansim {
namespace cuda {

// Returns 0 on success, else the cudaError_t of the launch.
int fill_f32(int variate, uint64_t seed, uint64_t stream, uint64_t start, float* out, std::size_t n, void* cuda_stream);
int fill_f64(int variate, uint64_t seed, uint64_t stream, uint64_t start, double* out, std::size_t n, void* cuda_stream);

}  // namespace cuda
}  // namespace chansim

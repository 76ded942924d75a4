// Host launchers of the CUDA channel-simulation kernels (device pointers).
// pfr_search_chunk leaves one (score, index) pair per block of 256 candidates in
// block_score / block_index (ceil(k / 256) entries); the arg-min over them, ties
// to the smaller index, is the CPU search's index.
#pragma once
#include <cstddef>
#include <cstdint>

namespace chansim {
namespace cuda {

int dq_quantize(const float* x, const double* mu, std::size_t mu_n, const double* step, std::size_t step_n,
                uint64_t seed, uint64_t stream, uint64_t start, int32_t* k, std::size_t n,
                unsigned long long* first_bad, void* cuda_stream);
int dq_dequantize(const int32_t* k, const double* mu, std::size_t mu_n, const double* step, std::size_t step_n,
                  uint64_t seed, uint64_t stream, uint64_t start, float* out, std::size_t n, void* cuda_stream);
int pfr_search_chunk(const double* lin, const double* quad, double c0, std::size_t d, uint64_t seed,
                     uint64_t cand_stream, uint64_t arrival_stream, int ordered, uint64_t k, double* t_scratch,
                     double* block_score, unsigned long long* block_index, void* cuda_stream);

}  // namespace cuda
}  // namespace chansim

// Batch generation of addressed random variates (multi-threaded, SIMD).
//
// Element i of every call depends only on (seed, stream, start + i): the output
// is the same for any thread count, any split of the range and any ISA path.
#pragma once
#include <cstddef>
#include <cstdint>

namespace chansim {
namespace prng {

enum class Variate : int { Uniform = 0, Normal = 1, Exponential = 2 };

// Raw words start .. start+n-1 of the stream.
void fill_words(uint64_t seed, uint64_t stream, uint64_t start, uint32_t* out, std::size_t n);

void fill_f32(Variate v, uint64_t seed, uint64_t stream, uint64_t start, float* out, std::size_t n);
void fill_f64(Variate v, uint64_t seed, uint64_t stream, uint64_t start, double* out, std::size_t n);

// Single-threaded variants, for callers that already run inside parallel_for.
void fill_words_serial(uint64_t seed, uint64_t stream, uint64_t start, uint32_t* out, std::size_t n);
void fill_f32_serial(Variate v, uint64_t seed, uint64_t stream, uint64_t start, float* out, std::size_t n);
void fill_f64_serial(Variate v, uint64_t seed, uint64_t stream, uint64_t start, double* out, std::size_t n);

// Name of the kernel set chosen at run time ("avx2" or "baseline").
const char* prng_isa();

namespace kernels {
// One ISA's single-threaded kernels; the dispatcher picks a set.
struct PrngKernels {
  void (*words)(uint64_t, uint64_t, uint64_t, uint32_t*, std::size_t);
  void (*f32)(int, uint64_t, uint64_t, uint64_t, float*, std::size_t);
  void (*f64)(int, uint64_t, uint64_t, uint64_t, double*, std::size_t);
};
const PrngKernels& prng_baseline();
#if defined(CHANSIM_HAVE_AVX2_TU)
const PrngKernels& prng_avx2();
#endif
}  // namespace kernels

}  // namespace prng
}  // namespace chansim

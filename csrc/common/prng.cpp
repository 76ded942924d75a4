#include "prng.h"

#include "isa.h"
#include "parallel.h"

namespace chansim {
namespace prng {
namespace {

// Below this many elements a second thread costs more than it saves.
constexpr std::size_t kGrain = 1 << 16;

const kernels::PrngKernels& select_kernels() {
#if defined(CHANSIM_HAVE_AVX2_TU)
  if (use_avx2()) return kernels::prng_avx2();
#endif
  return kernels::prng_baseline();
}

const kernels::PrngKernels& active() {
  static const kernels::PrngKernels& k = select_kernels();
  return k;
}

}  // namespace

const char* prng_isa() {
#if defined(CHANSIM_HAVE_AVX2_TU)
  if (&active() == &kernels::prng_avx2()) return "avx2";
#endif
  return "baseline";
}

void fill_words_serial(uint64_t seed, uint64_t stream, uint64_t start, uint32_t* out, std::size_t n) {
  active().words(seed, stream, start, out, n);
}
void fill_f32_serial(Variate v, uint64_t seed, uint64_t stream, uint64_t start, float* out, std::size_t n) {
  active().f32(static_cast<int>(v), seed, stream, start, out, n);
}
void fill_f64_serial(Variate v, uint64_t seed, uint64_t stream, uint64_t start, double* out, std::size_t n) {
  active().f64(static_cast<int>(v), seed, stream, start, out, n);
}

void fill_words(uint64_t seed, uint64_t stream, uint64_t start, uint32_t* out, std::size_t n) {
  const auto& k = active();
  parallel_for(n, kGrain, 4, [&](std::size_t b, std::size_t e) { k.words(seed, stream, start + b, out + b, e - b); });
}

void fill_f32(Variate v, uint64_t seed, uint64_t stream, uint64_t start, float* out, std::size_t n) {
  const auto& k = active();
  parallel_for(n, kGrain, 4,
               [&](std::size_t b, std::size_t e) { k.f32(static_cast<int>(v), seed, stream, start + b, out + b, e - b); });
}

void fill_f64(Variate v, uint64_t seed, uint64_t stream, uint64_t start, double* out, std::size_t n) {
  const auto& k = active();
  parallel_for(n, kGrain / 2, 2,
               [&](std::size_t b, std::size_t e) { k.f64(static_cast<int>(v), seed, stream, start + b, out + b, e - b); });
}

}  // namespace prng
}  // namespace chansim

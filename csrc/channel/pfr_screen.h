// The chord pass of PFR screening (pfr.cpp), one build per instruction set
// (pfr_screen.inc): eps[i] = ab[2j] + ab[2j + 1] * (w[i] & 0x1FFFFF) in float
// with j = w[i] >> 21 (each bin's chord as an adjacent (a, b) pair); bit (i mod 8) of flag[i / 8] is set where that is NaN (a
// bin the coarse table does not cover; the caller fills those words in).
//
// approx_scores: out[j] = Σ_i lin[i] e[i] (+ quad[i] e[i]²) in float32 for the
// m candidates e = eps + j d, in an order each build chooses (eight lanes on
// AVX2); screening_margin (pfr.cpp) bounds the rounding of any order.
#pragma once
#include <cstddef>
#include <cstdint>

namespace chansim {
namespace pfr {
namespace screen {

using ChordPass = void (*)(const float* ab, const uint32_t* w, float* eps, uint8_t* flag,
                           std::size_t m);

using ApproxScores = void (*)(const float* lin, const float* quad, const float* eps, std::size_t d, std::size_t m,
                             double* out);

namespace baseline {
void chord_pass(const float* ab, const uint32_t* w, float* eps, uint8_t* flag, std::size_t m);
void approx_scores(const float* lin, const float* quad, const float* eps, std::size_t d, std::size_t m, double* out);
}
#if defined(CHANSIM_HAVE_AVX2_TU)
namespace avx2 {
void chord_pass(const float* ab, const uint32_t* w, float* eps, uint8_t* flag, std::size_t m);
void approx_scores(const float* lin, const float* quad, const float* eps, std::size_t d, std::size_t m, double* out);
}
#endif

}  // namespace screen
}  // namespace pfr
}  // namespace chansim

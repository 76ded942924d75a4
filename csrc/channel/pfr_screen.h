// The chord pass of PFR screening (pfr.cpp), one build per instruction set
// (pfr_screen.inc): eps[i] = ca[j] + cb[j] * (w[i] & 0x1FFFFF) in float with
// j = w[i] >> 21; bit (i mod 8) of flag[i / 8] is set where that is NaN (a
// bin the coarse table does not cover; the caller fills those words in).
#pragma once
#include <cstddef>
#include <cstdint>

namespace chansim {
namespace pfr_screen {

using ChordPass = void (*)(const float* ca, const float* cb, const uint32_t* w, float* eps, uint8_t* flag,
                           std::size_t m);

namespace baseline {
void chord_pass(const float* ca, const float* cb, const uint32_t* w, float* eps, uint8_t* flag, std::size_t m);
}
#if defined(CHANSIM_HAVE_AVX2_TU)
namespace avx2 {
void chord_pass(const float* ca, const float* cb, const uint32_t* w, float* eps, uint8_t* flag, std::size_t m);
}
#endif

}  // namespace pfr_screen
}  // namespace chansim

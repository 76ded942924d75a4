// The search tree shared by GPRS and GRC (docs/format.md §4.1): per-node
// Philox words, split points and the 10-point Gauss-Legendre rule both
// encoders integrate with. Internal to csrc/channel.
#pragma once
#include <cstdint>

#include "channel/gprs.h"
#include "channel/grc_math.h"
#include "common/philox.h"
#include "common/transforms.h"

namespace chansim {
namespace grc {

// 10-point Gauss-Legendre on [-1, 1], symmetric half (numpy.polynomial.legendre.leggauss).
constexpr int kGlHalf = 5;
constexpr double kGlX[kGlHalf] = {0.14887433898163122, 0.4333953941292472, 0.6794095682990244,
                                  0.8650633666889845, 0.9739065285171717};
constexpr double kGlW[kGlHalf] = {0.2955242247147528, 0.2692667193099965, 0.219086362515982,
                                  0.1494513491505804, 0.06667134430868814};

struct NodeWords {
  double u;       // uniform for the node's sample (words 0, 1)
  uint64_t w23;   // words 2, 3: GPRS arrival increment, GRC acceptance uniform
};

inline NodeWords node_words(uint64_t key, u128 index) {
  uint32_t w[4];
  philox_block(key, index.hi, index.lo, w);
  const uint64_t a = static_cast<uint64_t>(w[0]) | (static_cast<uint64_t>(w[1]) << 32);
  const uint64_t b = static_cast<uint64_t>(w[2]) | (static_cast<uint64_t>(w[3]) << 32);
  return {uniform_f64(a), b};
}

// The encoder-only uniform of GRC's child choice: the block of counter
// H + 2^127, which no node (H < 2^127) reads.
inline double node_child_uniform(uint64_t key, u128 index) {
  uint32_t w[4];
  philox_block(key, index.hi | (uint64_t{1} << 63), index.lo, w);
  return uniform_f64(static_cast<uint64_t>(w[0]) | (static_cast<uint64_t>(w[1]) << 32));
}

inline double split_point(double a, double b, double sample, Split split) {
  return split == Split::Sample ? sample : det_median(a, b);
}

}  // namespace grc
}  // namespace chansim

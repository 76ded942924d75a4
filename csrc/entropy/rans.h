// rANS coder core (Duda; Giesen's interleaving), 64-bit state, 32-bit words.
//
// Contract
//  * Order: rANS is a stack. The stream layer (stream.h) encodes symbols in
//    reverse, so from the API's point of view symbols decode in encode order.
//  * Precision: every interval is [start, start + freq) within [0, 2^p),
//    kMinPrecision <= p <= kMaxPrecision, freq >= 1, start + freq <= 2^p.
//  * State: x in [kLower, kLower * 2^32) = [2^31, 2^63) between steps, so one
//    step moves at most one 32-bit word. kLower is a multiple of 2^p, which makes
//    the renormalisation interval "b-unique" and decoding exact.
//  * Words: 32 bits, serialised little-endian by the stream layer.
//  * A state may also start below kLower (the stream layer's single-lane tail,
//    see stream.h): encoding then emits nothing until x reaches kLower, and the
//    decoder reads a word only while words remain.
//
// Why 64/32: one renormalisation test per step and whole-word I/O, and a state
// far above 2^p keeps rANS's own coding loss negligible: measured (4M Gaussian
// symbols, one lane) below 3e-6 bit/symbol up to p = 24, 3e-5 at p = 28 and
// 5e-4 at p = 30, where x / 2^p can drop to 2 after renormalisation.
#pragma once
#include <cstdint>

#include "common/hd.h"

namespace chansim {
namespace rans {

constexpr int kMinPrecision = 16;
constexpr int kMaxPrecision = 30;
constexpr uint64_t kLower = uint64_t(1) << 31;

struct Interval {
  uint32_t start;
  uint32_t freq;
};

// Encoder step. Emits (via emit(word)) at most one word, then pushes the
// interval onto the state.
template <class Emit>
CHANSIM_HD void encode_step(uint64_t& x, Interval iv, int precision, Emit&& emit) {
  const uint64_t x_max = ((kLower >> precision) << 32) * iv.freq;
  if (x >= x_max) {
    emit(static_cast<uint32_t>(x));
    x >>= 32;
  }
  x = ((x / iv.freq) << precision) + (x % iv.freq) + iv.start;
}

// Decoder: the slot selects the symbol whose interval contains it ...
CHANSIM_HD uint32_t decode_slot(uint64_t x, int precision) {
  return static_cast<uint32_t>(x) & ((uint32_t(1) << precision) - 1);
}

// ... then the state pops that interval ...
CHANSIM_HD void decode_advance(uint64_t& x, Interval iv, int precision) {
  x = iv.freq * (x >> precision) + decode_slot(x, precision) - iv.start;
}

// ... and takes one word back when it fell below the lower bound.
CHANSIM_HD bool decode_needs_word(uint64_t x) { return x < kLower; }
CHANSIM_HD void decode_take(uint64_t& x, uint32_t word) { x = (x << 32) | word; }

}  // namespace rans
}  // namespace chansim

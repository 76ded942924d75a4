// Elias gamma and delta codes of positive integers (Elias 1975), over any bit
// sink / source, so the same code can go to a BitWriter (bitio.h) or through
// an arithmetic coder's fair bits (arith.h).
//
// Contract
//  * gamma(v), v >= 1: floor(log2 v) zeros, then the floor(log2 v) + 1 bits of
//    v, most significant first: 2 floor(log2 v) + 1 bits.
//  * delta(v), v >= 1, l = floor(log2 v): gamma(l + 1), then the l bits of v
//    below its leading one, most significant first: l + 2 floor(log2(l + 1)) + 1
//    bits. v may be any unsigned type, 128-bit included.
//  * Sinks are callables put(unsigned bit); sources are callables get() ->
//    unsigned bit (which may throw on truncated data).
//  * Decoding takes a bound and returns false, having read no further than
//    needed to tell, when the code names a value beyond it (gamma: v > max_value;
//    delta: floor(log2 v) > max_log2), so corrupt data never drives a huge loop
//    or shift; the caller reports the error in its own words.
#pragma once
#include <cstdint>

namespace chansim {

// floor(log2 v) for v >= 1 (-1 for v = 0).
template <class UInt>
int floor_log2(UInt v) {
  int l = -1;
  while (v) {
    v >>= 1;
    ++l;
  }
  return l;
}

template <class PutBit>
void elias_gamma_put(uint64_t v, PutBit&& put) {
  const int l = floor_log2(v);
  for (int k = 0; k < l; ++k) put(0u);
  for (int k = l; k >= 0; --k) put(static_cast<unsigned>((v >> k) & 1u));
}

// max_value >= 1.
template <class GetBit>
bool elias_gamma_get(GetBit&& get, uint64_t max_value, uint64_t* v) {
  const int max_zeros = floor_log2(max_value);
  int zeros = 0;
  while (get() == 0) {
    if (++zeros > max_zeros) return false;
  }
  uint64_t x = 1;
  for (int k = 0; k < zeros; ++k) x = (x << 1) | get();
  if (x > max_value) return false;
  *v = x;
  return true;
}

template <class UInt>
int elias_delta_bits(UInt v) {
  const int l = floor_log2(v);
  return l + 2 * floor_log2(static_cast<uint64_t>(l + 1)) + 1;
}

template <class UInt, class PutBit>
void elias_delta_put(UInt v, PutBit&& put) {
  const int l = floor_log2(v);
  elias_gamma_put(static_cast<uint64_t>(l + 1), put);
  for (int k = l - 1; k >= 0; --k) put(static_cast<unsigned>((v >> k) & 1u));
}

// max_log2 < the bit width of UInt.
template <class UInt, class GetBit>
bool elias_delta_get(GetBit&& get, int max_log2, UInt* v) {
  uint64_t lp1;
  if (!elias_gamma_get(get, static_cast<uint64_t>(max_log2) + 1, &lp1)) return false;
  UInt x = 1;
  for (uint64_t k = 1; k < lp1; ++k) x = (x << 1) | static_cast<UInt>(get());
  *v = x;
  return true;
}

}  // namespace chansim

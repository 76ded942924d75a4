// Bit scans with one definition per compiler: GCC/Clang builtins, MSVC
// intrinsics, else a portable loop. Arguments must be nonzero.
#pragma once
#include <cstdint>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

#include "hd.h"

namespace chansim {

// Index of the lowest set bit.
inline int ctz64(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(x);
#elif defined(_MSC_VER) && defined(_M_X64)
  unsigned long i;
  _BitScanForward64(&i, x);
  return static_cast<int>(i);
#else
  int i = 0;
  while (!(x & 1u)) {
    x >>= 1;
    ++i;
  }
  return i;
#endif
}

inline int ctz32(uint32_t x) { return ctz64(x); }

// Number of significant bits: floor(log2 x) + 1.
inline int bit_length64(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  return 64 - __builtin_clzll(x);
#elif defined(_MSC_VER) && defined(_M_X64)
  unsigned long i;
  _BitScanReverse64(&i, x);
  return static_cast<int>(i) + 1;
#else
  int n = 0;
  while (x) {
    x >>= 1;
    ++n;
  }
  return n;
#endif
}

}  // namespace chansim

// Symbol search over an exact integer CDF, starting from a guess.
#pragma once
#include <cstdint>

#include "common/hd.h"

namespace chansim {
namespace rans {

// The k in [lo, hi] with cum(k) <= slot < cum(k + 1), for a nondecreasing cum
// with cum(lo) <= slot < cum(hi + 1). Gallops from the guess k (exponentially
// growing steps) to bracket the answer, then bisects: O(log |answer - k|)
// evaluations, and never more than ~2 log2(hi - lo) for a bad guess.
template <class Cum>
CHANSIM_HD int64_t cdf_search(int64_t lo, int64_t hi, int64_t k, uint32_t slot, const Cum& cum) {
  int64_t a, b;  // answer in [a, b]
  if (cum(k) > slot) {
    b = k - 1;
    for (int64_t step = 1;; step *= 2) {
      if (k - step <= lo) {
        a = lo;
        break;
      }
      if (cum(k - step) <= slot) {
        a = k - step;
        break;
      }
      b = k - step - 1;
    }
  } else {
    a = k;
    for (int64_t step = 1;; step *= 2) {
      if (k + step > hi) {
        b = hi;
        break;
      }
      if (cum(k + step) > slot) {
        b = k + step - 1;
        break;
      }
      a = k + step;
    }
  }
  while (a < b) {
    const int64_t mid = a + (b - a + 1) / 2;
    if (cum(mid) <= slot) {
      a = mid;
    } else {
      b = mid - 1;
    }
  }
  return a;
}

}  // namespace rans
}  // namespace chansim

// Categorical family: a probability row p[0, K) quantized to an exact integer
// CDF (docs/format.md §2.6):
//
//   P_k  = p_0 + p_1 + ... + p_{k-1}     (left to right, in float64)
//   S    = P_K,  W = 2^p - K - 1
//   G(k) = floor((P_k / S) * W) for 0 < k < K;  G(0) = 0, G(K) = W
//   cum(k) = G(k) + k;  the escape owns [2^p - 1, 2^p).
//
// Partial sums of nonnegative terms never decrease in floating point, so G is
// nondecreasing and every symbol has frequency >= 1.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "args.h"
#include "segment.h"

namespace chansim {
namespace rans {

// cum[0, K] of the row starting at element `offset` of probs.
inline void categorical_cum(const RealArg& probs, std::size_t offset, std::size_t K, int precision, uint32_t* cum) {
  double s = 0.0;
  for (std::size_t j = 0; j < K; ++j) s += probs.at(offset + j);
  const double W = static_cast<double>((uint32_t(1) << precision) - static_cast<uint32_t>(K) - 1);
  double partial = 0.0;
  cum[0] = 0;
  for (std::size_t k = 1; k < K; ++k) {
    partial += probs.at(offset + k - 1);
    cum[k] = static_cast<uint32_t>((partial / s) * W) + static_cast<uint32_t>(k);
  }
  cum[K] = static_cast<uint32_t>(W) + static_cast<uint32_t>(K);
}

// The step of symbol v from a full cum row.
inline uint64_t categorical_step(const uint32_t* cum, std::size_t K, int32_t v, int precision, bool* escape) {
  if (v < 0 || static_cast<std::size_t>(v) >= K) {
    *escape = true;
    return pack_step((uint32_t(1) << precision) - 1, 1);
  }
  *escape = false;
  return pack_step(cum[v], cum[v + 1] - cum[v]);
}

// The step of symbol v computing only the partial sums it needs (per-symbol rows).
inline uint64_t categorical_step_row(const RealArg& probs, std::size_t offset, std::size_t K, int32_t v,
                                     int precision, bool* escape) {
  if (v < 0 || static_cast<std::size_t>(v) >= K) {
    *escape = true;
    return pack_step((uint32_t(1) << precision) - 1, 1);
  }
  *escape = false;
  const std::size_t k = static_cast<std::size_t>(v);
  double s = 0.0, p_k = 0.0, p_k1 = 0.0;
  for (std::size_t j = 0; j < K; ++j) {
    if (j == k) p_k = s;
    s += probs.at(offset + j);
    if (j == k) p_k1 = s;
  }
  const double W = static_cast<double>((uint32_t(1) << precision) - static_cast<uint32_t>(K) - 1);
  const uint32_t g0 = k == 0 ? 0 : static_cast<uint32_t>((p_k / s) * W);
  const uint32_t g1 = k + 1 == K ? static_cast<uint32_t>(W) : static_cast<uint32_t>((p_k1 / s) * W);
  return pack_step(g0 + static_cast<uint32_t>(k), g1 - g0 + 1);
}

// Symbol lookup in a cum row: binary search in [first, last] (a bucket hint or
// the whole row).
inline Lookup categorical_lookup(const uint32_t* cum, uint32_t slot, int precision,
                                 std::size_t first, std::size_t last) {
  if (slot >= (uint32_t(1) << precision) - 1) return {slot, 1, 0, 32, kEscape};
  while (first < last) {
    const std::size_t mid = first + (last - first + 1) / 2;
    if (cum[mid] <= slot) {
      first = mid;
    } else {
      last = mid - 1;
    }
  }
  return {cum[first], cum[first + 1] - cum[first], static_cast<int32_t>(first), 0, kPlain};
}

// A shared row with a bucket index over the top 12 bits of the slot, so a
// lookup bisects only the few symbols whose intervals meet the slot's bucket.
class CategoricalTable {
 public:
  CategoricalTable(const RealArg& probs, std::size_t K, int precision) : K_(K), precision_(precision) {
    cum_.resize(K + 1);
    categorical_cum(probs, 0, K, precision, cum_.data());
    shift_ = precision - kBucketBits;
    first_.resize((std::size_t(1) << kBucketBits) + 1);
    std::size_t k = 0;
    for (std::size_t b = 0; b <= (std::size_t(1) << kBucketBits); ++b) {
      const uint64_t slot = static_cast<uint64_t>(b) << shift_;
      while (k < K && cum_[k + 1] <= slot) ++k;
      first_[b] = static_cast<uint32_t>(k);
    }
  }
  uint64_t step(int32_t v, bool* escape) const { return categorical_step(cum_.data(), K_, v, precision_, escape); }
  Lookup lookup(uint32_t slot) const {
    const std::size_t b = slot >> shift_;
    const std::size_t last = first_[b + 1] < K_ ? first_[b + 1] : K_ - 1;
    return categorical_lookup(cum_.data(), slot, precision_, first_[b], last);
  }

 private:
  static constexpr int kBucketBits = 12;
  std::size_t K_;
  int precision_;
  int shift_;
  std::vector<uint32_t> cum_;
  std::vector<uint32_t> first_;
};

}  // namespace rans
}  // namespace chansim

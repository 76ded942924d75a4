// Truncated Zipf family P(k) ∝ k^-lambda on [1, N] (PFR / ORC indices),
// quantized to an exact integer CDF (docs/format.md §2.7).
//
// With f(j) = exp(-lambda log j) and J = min(8, N):
//   S(n) = f(1) + ... + f(n)                              n <= J (left to right)
//   S(n) = S(J) + I(J + 1/2, n + 1/2)                     n > J
//   T(n) = I(n + 1/2, N + 1/2)                            n >= J
//   T(n) = T(J) + f(J) + f(J - 1) + ... + f(n + 1)        n < J (in that order)
//   Z    = S(J) + T(J)
// where I(a, b) = ∫_a^b t^-lambda dt = a^(1-lambda) L E((1 - lambda) L), L = log1p((b - a) / a),
// E(y) = (e^y - 1) / y: the midpoint rule beyond J terms (relative error per
// term <= lambda (lambda + 1) / (24 (J + 1/2)^2)). The CDF below n uses the
// head S where it is at most half the mass and the tail T beyond, both in
// relative precision, so it stays monotone out to N = 2^31:
//   G(n) = floor(W v)                if v = S(n) / Z <= 1/2
//          W - floor(W min(T(n) / Z, 1/2))  otherwise
// Symbols [1, hi], hi = min(N, 2^(p-1)); cum(k) = G(k - 1) + (k - 1); W = 2^p - hi - 1;
// the escape owns [cum(hi + 1), 2^p) (the mass beyond hi when N > hi).
#pragma once
#include <cstdint>

#include "cdf_search.h"
#include "common/detmath.h"
#include "common/hd.h"
#include "common/transforms.h"
#include "segment.h"

namespace chansim {
namespace rans {

constexpr int kZipfHead = 8;

struct ZipfCanon {
  double lam, N, hi, W, Z;
  int J;
  double s[kZipfHead + 1];  // S(0..J)
  double t[kZipfHead + 1];  // T(0..J)
};

CHANSIM_HD double zipf_integral(double lam, double a, double b) {
  const double L = det_log1p((b - a) / a);
  const double one_m = 1.0 - lam;
  return det_exp(one_m * det_log(a)) * L * det_expm1_ratio(one_m * L);
}

// lam in (0, 1000], N in [1, 2^31 - 1] (checked by the caller).
CHANSIM_HD ZipfCanon zipf_canon(double lam, double N, int precision) {
  ZipfCanon c;
  c.lam = lam;
  c.N = N;
  const double cap = static_cast<double>(uint32_t(1) << (precision - 1));
  c.hi = N < cap ? N : cap;
  c.W = static_cast<double>(uint32_t(1) << precision) - c.hi - 1.0;
  c.J = N < kZipfHead ? static_cast<int>(N) : kZipfHead;
  double f[kZipfHead + 1];
  for (int j = 1; j <= c.J; ++j) f[j] = det_exp(0.0 - lam * det_log(static_cast<double>(j)));
  c.s[0] = 0.0;
  for (int j = 1; j <= c.J; ++j) c.s[j] = c.s[j - 1] + f[j];
  c.t[c.J] = c.N > c.J ? zipf_integral(lam, c.J + 0.5, N + 0.5) : 0.0;
  for (int j = c.J; j >= 1; --j) c.t[j - 1] = c.t[j] + f[j];
  c.Z = c.s[c.J] + c.t[c.J];
  return c;
}

// G(n): the quantized mass of the symbols below n + 1, n in [0, N].
CHANSIM_HD uint32_t zipf_g(const ZipfCanon& c, double n) {
  const int ni = n < c.J ? static_cast<int>(n) : c.J;
  const double S = n <= c.J ? c.s[ni] : c.s[c.J] + zipf_integral(c.lam, c.J + 0.5, n + 0.5);
  const double v = S / c.Z;
  if (v <= 0.5) return static_cast<uint32_t>(v * c.W);
  const double T = n <= c.J ? c.t[ni] : zipf_integral(c.lam, n + 0.5, c.N + 0.5);
  double w = T / c.Z;
  w = w < 0.5 ? w : 0.5;
  return static_cast<uint32_t>(c.W) - static_cast<uint32_t>(w * c.W);
}

CHANSIM_HD uint32_t zipf_cum(const ZipfCanon& c, double k) { return zipf_g(c, k - 1.0) + static_cast<uint32_t>(k - 1.0); }

CHANSIM_HD uint64_t zipf_step(const ZipfCanon& c, int32_t v, int precision, bool* escape) {
  const double k = static_cast<double>(v);
  if (k < 1.0 || k > c.hi) {
    *escape = true;
    const uint32_t e = zipf_cum(c, c.hi + 1.0);
    return pack_step(e, (uint32_t(1) << precision) - e);
  }
  *escape = false;
  const uint32_t c0 = zipf_cum(c, k);
  return pack_step(c0, zipf_cum(c, k + 1.0) - c0);
}

// Most of the mass sits on small indices: gallop up from 1.
CHANSIM_HD Lookup zipf_lookup(const ZipfCanon& c, uint32_t slot, int precision) {
  const uint32_t esc = zipf_cum(c, c.hi + 1.0);
  if (slot >= esc) return {esc, (uint32_t(1) << precision) - esc, 0, 32, kEscape};
  const auto cum = [&c](int64_t j) { return zipf_cum(c, static_cast<double>(j)); };
  const int64_t k = cdf_search(1, static_cast<int64_t>(c.hi), 1, slot, cum);
  const uint32_t c0 = zipf_cum(c, static_cast<double>(k));
  return {c0, zipf_cum(c, static_cast<double>(k) + 1.0) - c0, static_cast<int32_t>(k), 0, kPlain};
}

}  // namespace rans
}  // namespace chansim

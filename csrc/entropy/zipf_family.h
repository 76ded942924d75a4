// Truncated Zipf family P(n) ∝ n^-lambda on [1, N] (PFR / ORC indices),
// quantized to exact integer CDFs (docs/format.md §2.7).
//
// Masses. With f(j) = exp(-lambda log j) and J = min(8, N):
//   S(m) = f(1) + ... + f(m)                          m <= J (left to right)
//   S(m) = S(J) + I(J + 1/2, m + 1/2)                 m > J
//   T(m) = I(m + 1/2, N + 1/2)                        m >= J
//   T(m) = T(J) + f(J) + f(J - 1) + ... + f(m + 1)    m < J (in that order)
//   Z    = S(J) + T(J)
// S is the mass of [1, m], T that of [m + 1, N]; I(a, b) = ∫_a^b t^-lambda dt =
// a^(1-lambda) L E((1 - lambda) L), L = log1p((b - a) / a), E(y) = (e^y - 1) / y,
// the midpoint rule beyond J terms (relative error per term <= lambda (lambda + 1)
// / (24 (J + 1/2)^2)). Quantized mass of [1, m] with W units:
//   G(m; W) = floor(W v)                         if v = S(m) / Z <= 1/2
//             W - floor(W min(T(m) / Z, 1/2))    otherwise
// Head (S) and tail (T) are each accurate in relative terms, so G is monotone
// out to N = 2^31: neighbouring masses differ by at least 1 / N relative.
//
// Coding. Every symbol of a table needs frequency >= 1, which would cost N / 2^p
// of the mass for a direct table; so only N <= 2^(p - 12) is coded directly:
//   cum(k) = G(k - 1; W) + (k - 1),  W = 2^p - N - 1,  k in [1, N].
// Larger N go by exponent class e = floor(log2 n) (E + 1 <= 32 classes):
//   cum(e) = G(min(2^e - 1, N); W) + e,  W = 2^p - E - 2,
// then, for e >= 1, the offset o = n - 2^e in sub-bands of 2^s (s = max(0, e - 12),
// H <= 4096 sub-bands) under the Zipf masses conditioned on the class, and the
// low s bits of o raw (the density varies by < lambda 2^-12 within a sub-band).
// Outside [1, N]: the escape [2^p - 1, 2^p) and 32 raw bits.
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
constexpr int kZipfDirectSlack = 12;  // direct table while N <= 2^(p - 12)
constexpr int kZipfSubBandBits = 12;  // <= 2^12 sub-bands per exponent class

struct ZipfCanon {
  double lam, N, Z, W;
  int J, E;  // E < 0: direct table
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
  c.J = N < kZipfHead ? static_cast<int>(N) : kZipfHead;
  double f[kZipfHead + 1];
  for (int j = 1; j <= c.J; ++j) f[j] = det_exp(0.0 - lam * det_log(static_cast<double>(j)));
  c.s[0] = 0.0;
  for (int j = 1; j <= c.J; ++j) c.s[j] = c.s[j - 1] + f[j];
  c.t[c.J] = c.N > c.J ? zipf_integral(lam, c.J + 0.5, N + 0.5) : 0.0;
  for (int j = c.J; j >= 1; --j) c.t[j - 1] = c.t[j] + f[j];
  c.Z = c.s[c.J] + c.t[c.J];
  const double M = static_cast<double>(uint32_t(1) << precision);
  if (N <= static_cast<double>(uint32_t(1) << (precision - kZipfDirectSlack))) {
    c.E = -1;
    c.W = M - N - 1.0;
  } else {
    c.E = 0;
    while (static_cast<double>(uint64_t(2) << c.E) <= N) ++c.E;
    c.W = M - c.E - 2.0;
  }
  return c;
}

CHANSIM_HD double zipf_S(const ZipfCanon& c, double m) {
  return m <= c.J ? c.s[static_cast<int>(m)] : c.s[c.J] + zipf_integral(c.lam, c.J + 0.5, m + 0.5);
}
CHANSIM_HD double zipf_T(const ZipfCanon& c, double m) {
  return m <= c.J ? c.t[static_cast<int>(m)] : zipf_integral(c.lam, m + 0.5, c.N + 0.5);
}

CHANSIM_HD uint32_t zipf_g(const ZipfCanon& c, double m, double W) {
  const double v = zipf_S(c, m) / c.Z;
  if (v <= 0.5) return static_cast<uint32_t>(v * W);
  double w = zipf_T(c, m) / c.Z;
  w = w < 0.5 ? w : 0.5;
  return static_cast<uint32_t>(W) - static_cast<uint32_t>(w * W);
}

// First-step CDF: over symbols k (direct) or classes e, in [0, 2^p - 1].
CHANSIM_HD uint32_t zipf_cum(const ZipfCanon& c, double k) {
  if (c.E < 0) return zipf_g(c, k - 1.0, c.W) + static_cast<uint32_t>(k - 1.0);
  const double below = static_cast<double>(uint64_t(1) << static_cast<int>(k)) - 1.0;  // k = e here
  return zipf_g(c, below < c.N ? below : c.N, c.W) + static_cast<uint32_t>(k);
}

// The sub-bands of class e >= 1: offsets [0, L) in H bands of 2^shift.
struct ZipfClass {
  double a, b;  // the class is (a, b]
  int shift;
  uint32_t H;
  bool head;  // conditional masses from S (head of the distribution) or T
  double base, den;
};

CHANSIM_HD ZipfClass zipf_class(const ZipfCanon& c, int e) {
  ZipfClass z;
  z.a = static_cast<double>(uint64_t(1) << e) - 1.0;
  const double top = static_cast<double>(uint64_t(2) << e) - 1.0;
  z.b = top < c.N ? top : c.N;
  const int sh = e - kZipfSubBandBits;
  z.shift = sh > 0 ? sh : 0;
  z.H = static_cast<uint32_t>((static_cast<uint64_t>(z.b - z.a) - 1) >> z.shift) + 1;
  z.head = zipf_S(c, z.a) / c.Z <= 0.5;
  z.base = z.head ? zipf_S(c, z.a) : zipf_T(c, z.a);
  z.den = z.head ? zipf_S(c, z.b) - z.base : z.base - zipf_T(c, z.b);
  return z;
}

// Conditional CDF of the sub-bands, in [0, 2^p]: cum(h) = floor(D(h) W) + h with
// W = 2^p - H and D(h) the class's mass below sub-band h over the class's mass
// (h / H if that mass underflowed to 0).
CHANSIM_HD uint32_t zipf_sub_cum(const ZipfCanon& c, const ZipfClass& z, uint32_t h, int precision) {
  const double W = static_cast<double>((uint32_t(1) << precision) - z.H);
  if (h == 0) return 0;
  if (h >= z.H) return uint32_t(1) << precision;
  const double x = z.a + static_cast<double>(static_cast<uint64_t>(h) << z.shift);
  double D;
  if (!(z.den > 0.0)) {
    D = static_cast<double>(h) / static_cast<double>(z.H);
  } else {
    D = (z.head ? zipf_S(c, x) - z.base : z.base - zipf_T(c, x)) / z.den;
  }
  return static_cast<uint32_t>(D * W) + h;
}

// The encoder's step for index v and the payload that completes it.
CHANSIM_HD uint64_t zipf_step(const ZipfCanon& c, int32_t v, int precision, Payload* pay) {
  const uint32_t M = uint32_t(1) << precision;
  const double k = static_cast<double>(v);
  if (k < 1.0 || k > c.N) {
    pay->bits = 32;
    pay->value = static_cast<uint32_t>(v);
    return pack_step(M - 1, 1);
  }
  if (c.E < 0) {
    const uint32_t c0 = zipf_cum(c, k);
    return pack_step(c0, zipf_cum(c, k + 1.0) - c0);
  }
  int e = 0;
  while ((uint32_t(2) << e) <= static_cast<uint32_t>(v) && e < 31) ++e;
  const uint32_t c0 = zipf_cum(c, e);
  const uint64_t step = pack_step(c0, zipf_cum(c, e + 1.0) - c0);
  if (e > 0) {
    const ZipfClass z = zipf_class(c, e);
    const uint32_t o = static_cast<uint32_t>(v) - (uint32_t(1) << e);
    const uint32_t h = o >> z.shift;
    pay->next_start = zipf_sub_cum(c, z, h, precision);
    pay->next_freq = zipf_sub_cum(c, z, h + 1, precision) - pay->next_start;
    pay->bits = static_cast<uint32_t>(z.shift);
    pay->value = o & ((uint32_t(1) << z.shift) - 1);
  }
  return step;
}

// Most of the mass sits on small indices and classes: gallop up from the bottom.
CHANSIM_HD Lookup zipf_lookup(const ZipfCanon& c, uint32_t slot, int precision) {
  const uint32_t M = uint32_t(1) << precision;
  if (slot >= M - 1) return {M - 1, 1, 0, 32, kEscape};
  const auto cum = [&c](int64_t j) { return zipf_cum(c, static_cast<double>(j)); };
  if (c.E < 0) {
    const int64_t k = cdf_search(1, static_cast<int64_t>(c.N), 1, slot, cum);
    const uint32_t c0 = cum(k);
    return {c0, cum(k + 1) - c0, static_cast<int32_t>(k), 0, kPlain};
  }
  const int64_t e = cdf_search(0, c.E, 0, slot, cum);
  const uint32_t c0 = cum(e);
  // Class 0 is the single index 1; others continue with zipf_next.
  return {c0, cum(e + 1) - c0, e == 0 ? 1 : static_cast<int32_t>(e), 0, e == 0 ? kPlain : kNext};
}

// The sub-band of class e holding the slot; the raw low bits complete the index.
CHANSIM_HD Lookup zipf_next(const ZipfCanon& c, int32_t e, uint32_t slot, int precision) {
  const ZipfClass z = zipf_class(c, e);
  const auto cum = [&](int64_t h) { return zipf_sub_cum(c, z, static_cast<uint32_t>(h), precision); };
  int64_t h = static_cast<int64_t>((static_cast<uint64_t>(slot) * z.H) >> precision);
  h = cdf_search(0, static_cast<int64_t>(z.H) - 1, h, slot, cum);
  const uint32_t c0 = cum(h);
  const uint32_t value = (uint32_t(1) << e) + (static_cast<uint32_t>(h) << z.shift);
  return {c0, cum(h + 1) - c0, static_cast<int32_t>(value), static_cast<uint8_t>(z.shift),
          z.shift ? kAddRaw : kPlain};
}

}  // namespace rans
}  // namespace chansim

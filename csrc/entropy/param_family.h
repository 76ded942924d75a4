// Quantized location-scale families with fractional means: Gaussian, logistic
// and Laplace. P(k) is the mass of [k - 1/2, k + 1/2) under the continuous
// model, quantized to an exact integer CDF that both sides evaluate bit for bit
// (docs/format.md §2.5):
//
//   mean  -> mu    = rint(mean * 2^20) / 2^20   (mean clamped to the int32 range)
//   scale -> sigma = scale clamped to [2^-20, 2^30], mantissa rounded to 16 bits
//   window [lo, hi] = floor(mu) -/+ h (+1 above), h = min(ceil(T sigma), 2^(p-2) - 1),
//          clipped to the int32 range; R = hi - lo + 1 <= 2^(p-1) symbols
//   W     = 2^p - R - 1                         (the mass shared out by the model)
//   G(k)  = floor(W * min(sf(|x|), 1/2))       if x <= 0
//           W - floor(W * min(sf(x), 1/2))      if x > 0,   x = ((k - 1/2) - mu) / sigma
//   cum(k) = G(k) - G(lo) + (k - lo)            k in [lo, hi + 1]
//
// with G(lo) = 0 and G(hi + 1) = W when the window was not clipped. Each symbol
// in the window gets frequency cum(k + 1) - cum(k) >= 1 (the "+ (k - lo)" leak);
// the escape gets [cum(hi + 1), 2^p), frequency >= 1, and its value follows as 32
// raw bits, so every int32 is encodable. sf is evaluated on the side of the
// mode, in relative precision, so G is nondecreasing: neighbouring arguments
// differ by 1/sigma >= 2^-30 and sf's relative rounding noise (< 1e-14) is far
// below its relative change over that step.
#pragma once
#include <cmath>
#include <cstdint>

#include "cdf_search.h"
#include "common/detmath.h"
#include "common/hd.h"
#include "common/transforms.h"
#include "segment.h"

namespace chansim {
namespace rans {

enum class Shape : int { kGaussian = 0, kLogistic = 1, kLaplace = 2 };

template <Shape S>
struct ShapeTraits;

// log(x) for positive normal x to ~1.2e-5 absolute: exponent plus a quintic
// fit of log2(1 + m) in the mantissa. Only the decoder's starting guess uses it
// (a wrong guess costs a search step, never a wrong symbol): speed over accuracy.
CHANSIM_HD double guess_log(double x) {
  const uint64_t u = detail::bits_of(x);
  const double e = static_cast<double>(static_cast<int32_t>(u >> 52) - 1023);
  const double m = detail::double_of((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull) - 1.0;
  const double l2 = m * (1.4418798958064627 +
                         m * (-0.7088652177338794 + m * (0.4152455603893637 + m * (-0.19351652460556623 +
                                                                                    m * 0.045268292603904525))));
  return (e + l2) * 0.6931471805599453;
}

// kTail: the window half-width in scales; the mass beyond is below 2^-34,
// negligible even at 30-bit precision, and folded into the edge symbols.
// sf: the survival function (deterministic). guess: an approximate quantile the
// decoder starts its search from (speed only; any value would decode right).
template <>
struct ShapeTraits<Shape::kGaussian> {
  static constexpr double kTail = 6.5;
  CHANSIM_HD static double sf(double a) { return det_normal_sf(a); }
  // Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4): one branch-free formula.
  CHANSIM_HD static double guess(double u) {
    const double upper = 1.0 - u;
    const double t = std::sqrt(-2.0 * guess_log(u < 0.5 ? u : upper));
    const double z = t - (2.515517 + t * (0.802853 + t * 0.010328)) / (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308)));
    const double neg = 0.0 - z;
    return u < 0.5 ? neg : z;
  }
};
template <>
struct ShapeTraits<Shape::kLogistic> {
  static constexpr double kTail = 24.0;
  CHANSIM_HD static double sf(double a) { return det_logistic_sf(a); }
  CHANSIM_HD static double guess(double u) { return guess_log(u) - guess_log(1.0 - u); }
};
template <>
struct ShapeTraits<Shape::kLaplace> {
  static constexpr double kTail = 24.0;
  CHANSIM_HD static double sf(double a) { return det_laplace_sf(a); }
  CHANSIM_HD static double guess(double u) {
    const double upper = 1.0 - u;
    const double y = guess_log(2.0 * (u < 0.5 ? u : upper));
    const double neg = 0.0 - y;
    return u < 0.5 ? y : neg;
  }
};

// The canonical per-symbol model; window bounds and W are exact integers held
// in doubles so batch loops stay in one numeric type.
struct ParamCanon {
  double mu, sigma, inv;
  double lo, hi, W;
  int32_t g_lo, g_hi1;  // G(lo), G(hi + 1)
};

CHANSIM_HD double det_floor(double x) {
  const double r = det_rint(x);
  return r - (r > x ? 1.0 : 0.0);
}

// Round to 16 explicit mantissa bits, ties away from zero (exact bit arithmetic).
CHANSIM_HD double round_mantissa16(double s) {
  const uint64_t u = detail::bits_of(s);
  return detail::double_of((u + (uint64_t(1) << 35)) & ~((uint64_t(1) << 36) - 1));
}

// G at the standardized edge x = ((k - 1/2) - mu) / sigma.
// (Both arms of every select are computed first: a conditional floating-point
// operation would keep the compiler from vectorising the batch kernels.)
// (Split in two so batch kernels can run the survival function over all edges
// of a batch in one loop.)
template <Shape S>
CHANSIM_HD double param_q(double x) {
  const double neg = 0.0 - x;
  const double q = ShapeTraits<S>::sf(x < 0.0 ? neg : x);
  return q < 0.5 ? q : 0.5;
}
CHANSIM_HD int32_t param_g_from_q(double x, double q, double W) {
  const int32_t g = static_cast<int32_t>(q * W);
  const int32_t upper = static_cast<int32_t>(W) - g;
  return x <= 0.0 ? g : upper;
}
template <Shape S>
CHANSIM_HD int32_t param_g_at(double x, double W) {
  return param_g_from_q(x, param_q<S>(x), W);
}

template <Shape S>
CHANSIM_HD int32_t param_g_raw(const ParamCanon& c, double k) {
  return param_g_at<S>(((k - 0.5) - c.mu) * c.inv, c.W);
}

// Everything but G(lo) and G(hi + 1); returns > 0 if the window was clipped, else 0.
// mean and scale must be finite and scale > 0 (checked by the caller).
template <Shape S>
CHANSIM_HD double param_canon_core(double mean, double scale, int precision, ParamCanon& c) {
  const double m = mean < -2147483648.0 ? -2147483648.0 : (mean > 2147483647.0 ? 2147483647.0 : mean);
  c.mu = det_rint(m * 1048576.0) * (1.0 / 1048576.0);
  const double s = scale < 0x1p-20 ? 0x1p-20 : (scale > 0x1p30 ? 0x1p30 : scale);
  c.sigma = round_mantissa16(s);
  c.inv = 1.0 / c.sigma;
  const double hmax = static_cast<double>((uint32_t(1) << (precision - 2)) - 1);
  const double spread = ShapeTraits<S>::kTail * c.sigma;
  const double h_raw = 0.0 - det_floor(0.0 - spread);
  const double h = h_raw < hmax ? h_raw : hmax;
  const double center = det_floor(c.mu);
  c.lo = center - h;
  c.hi = center + h + 1.0;
  // ceil(spread) > hmax <=> spread > hmax for the integer hmax. (Flags as
  // selected numbers rather than boolean logic: GCC vectorises only this form.)
  const double clipped =
      (spread > hmax ? 1.0 : 0.0) + (c.lo < -2147483648.0 ? 1.0 : 0.0) + (c.hi > 2147483647.0 ? 1.0 : 0.0);
  c.lo = c.lo < -2147483648.0 ? -2147483648.0 : c.lo;
  c.hi = c.hi > 2147483647.0 ? 2147483647.0 : c.hi;
  c.W = static_cast<double>(uint32_t(1) << precision) - (c.hi - c.lo + 1.0) - 1.0;
  return clipped;
}

template <Shape S>
CHANSIM_HD ParamCanon param_canon(double mean, double scale, int precision) {
  ParamCanon c;
  const bool clipped = param_canon_core<S>(mean, scale, precision, c) > 0.0;
  c.g_lo = clipped ? param_g_raw<S>(c, c.lo) : 0;
  c.g_hi1 = clipped ? param_g_raw<S>(c, c.hi + 1.0) : static_cast<int32_t>(c.W);
  return c;
}

template <Shape S>
CHANSIM_HD uint32_t param_cum(const ParamCanon& c, double k) {
  const int32_t g = k <= c.lo ? c.g_lo : (k > c.hi ? c.g_hi1 : param_g_raw<S>(c, k));
  return static_cast<uint32_t>(g - c.g_lo) + static_cast<uint32_t>(k - c.lo);
}

CHANSIM_HD uint32_t param_escape_start(const ParamCanon& c) {
  return static_cast<uint32_t>(c.g_hi1 - c.g_lo) + static_cast<uint32_t>(c.hi - c.lo + 1.0);
}

// The encoder's step for symbol v; sets *escape when v is outside the window.
template <Shape S>
CHANSIM_HD uint64_t param_step(const ParamCanon& c, int32_t v, int precision, bool* escape) {
  const double k = static_cast<double>(v);
  if (k < c.lo || k > c.hi) {
    *escape = true;
    const uint32_t e = param_escape_start(c);
    return pack_step(e, (uint32_t(1) << precision) - e);
  }
  *escape = false;
  const uint32_t c0 = param_cum<S>(c, k);
  const uint32_t c1 = param_cum<S>(c, k + 1.0);
  return pack_step(c0, c1 - c0);
}

// The decoder's lookup: guess k from the model's quantile, verify against the
// exact CDF, search only if the guess was off.
template <Shape S>
CHANSIM_HD Lookup param_lookup(const ParamCanon& c, uint32_t slot, int precision) {
  const uint32_t esc = param_escape_start(c);
  if (slot >= esc) return {esc, (uint32_t(1) << precision) - esc, 0, 32, kEscape};
  const double u = (static_cast<double>(slot) + 0.5) * (1.0 / static_cast<double>(uint32_t(1) << precision));
  const double v = c.mu + c.sigma * ShapeTraits<S>::guess(u) + 0.5;
  double k = v < c.lo ? c.lo : (v > c.hi ? c.hi : det_floor(v));
  uint32_t c0 = param_cum<S>(c, k);
  uint32_t c1 = param_cum<S>(c, k + 1.0);
  if (slot < c0 || slot >= c1) {
    const auto cum = [&c](int64_t j) { return param_cum<S>(c, static_cast<double>(j)); };
    k = static_cast<double>(cdf_search(static_cast<int64_t>(c.lo), static_cast<int64_t>(c.hi),
                                       static_cast<int64_t>(k), slot, cum));
    c0 = param_cum<S>(c, k);
    c1 = param_cum<S>(c, k + 1.0);
  }
  return {c0, c1 - c0, static_cast<int32_t>(k), 0, kPlain};
}

}  // namespace rans
}  // namespace chansim

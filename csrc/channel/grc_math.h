// Deterministic special functions for GPRS on Gaussian pairs.
//
// Everything here uses only IEEE basic operations (+ - * / sqrt), exact bit
// manipulation and chansim's det_log / ndtri / det_exp / det_normal_sf /
// det_expm1_ratio (common/detmath.h, the one implementation of each), in a
// fixed order, so the sample
// an encoder draws is reproduced bit for bit by any decoder on any machine
// (the core is compiled with -ffp-contract=off, never -ffast-math). libm's exp
// and erfc are not used: their last bit differs between C libraries.
//
// Conventions: P = N(0, 1) is the standardised prior; Qt(x) = P(X > x) is the
// upper tail, Ph(x) = P(0 < X < x) the "half" mass; both are computed in the
// form that avoids cancellation for the argument at hand.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/detmath.h"
#include "common/hd.h"
#include "common/transforms.h"

namespace chansim {
namespace grc {

constexpr double kInvSqrt2Pi = 0.398942280401432677939946059934;

// 1 - exp(-y) for y >= 0 without cancellation at small y: y E(-y) with
// E(v) = (e^v - 1) / v from detmath.h.
CHANSIM_HD double det_one_minus_exp_neg(double y) { return y * det_expm1_ratio(0.0 - y); }

// Standard normal density. x^2 / 2 is split as xh^2 / 2 + (x - xh)(x + xh) / 2
// with xh = x cut to 21 mantissa bits (xh^2 exact), so the rounding of x^2
// does not cost relative accuracy in the far tail (x^2 / 2 ~ 700).
CHANSIM_HD double det_phi(double x) {
  const double xh = detail::double_of(detail::bits_of(x) & 0xFFFFFFFF00000000ull);
  const double a = -0.5 * (xh * xh);
  const double b = -0.5 * ((x - xh) * (x + xh));
  // det_exp clamps below -708; phi is 0 to double precision there (|x| > 37.6).
  if (a < -708.0) return 0.0;
  return kInvSqrt2Pi * det_exp(a) * det_exp(b);
}

// Ph(x) = Phi(x) - 1/2 for 0 <= x < 2.5 by the all-positive series
// phi(x) * sum x^(2n+1) / (2n+1)!!  (no cancellation).
// 1 / (2n + 1), n = 0..47, correctly rounded (compile-time IEEE division).
struct OddReciprocals {
  double v[48];
  constexpr OddReciprocals() : v() {
    for (int n = 0; n < 48; ++n) v[n] = 1.0 / static_cast<double>(2 * n + 1);
  }
};
constexpr OddReciprocals kOddRecip{};

// Multiplications by tabulated reciprocals instead of divisions: the loop
// runs ~35 times per call and sits inside the stretch-function quadrature.
// 47 terms reach 2^-60 of the sum for x < 2.5.
CHANSIM_HD double det_phalf_series(double x) {
  const double xx = x * x;
  double term = x, sum = x;
  for (int n = 1; n < 48; ++n) {
    term = term * xx * kOddRecip.v[n];
    sum = sum + term;
    if (term < 1e-17 * sum) break;
  }
  return det_phi(x) * sum;
}

// Upper tail P(X > x) for any x (+inf -> 0, -inf -> 1).
CHANSIM_HD double det_qt(double x) {
  if (x >= 0.0) {
    if (x == std::numeric_limits<double>::infinity()) return 0.0;
    if (x >= 37.0) return 0.0;  // Q(37) ~ 6e-300: det_normal_sf's fitted range ends here
    return x < 2.5 ? 0.5 - det_phalf_series(x) : det_normal_sf(x);
  }
  if (x == -std::numeric_limits<double>::infinity()) return 1.0;
  const double ax = 0.0 - x;
  return ax < 2.5 ? 0.5 + det_phalf_series(ax) : 1.0 - det_normal_sf(ax);
}

// Ph(x) = P(0 < X < x) for x >= 0 (+inf -> 1/2).
CHANSIM_HD double det_phalf(double x) {
  if (x < 2.5) return det_phalf_series(x);
  return 0.5 - det_qt(x);
}

// P(a < X < b) for a <= b (either may be infinite), in the form with the
// smallest relative error: differences of upper tails on one side of zero, a
// sum of half masses across it.
CHANSIM_HD double det_mass(double a, double b) {
  if (!(a < b)) return 0.0;
  if (a >= 0.0) {
    if (b < 2.5) return det_phalf(b) - det_phalf(a);
    return det_qt(a) - det_qt(b);
  }
  if (b <= 0.0) {
    const double na = 0.0 - b, nb = 0.0 - a;
    if (nb < 2.5) return det_phalf(nb) - det_phalf(na);
    return det_qt(na) - det_qt(nb);
  }
  return det_phalf(b) + det_phalf(0.0 - a);
}

// Inverse of the upper tail for t in (0, 1/2]: x >= 0 with Qt(x) = t.
CHANSIM_HD double det_qt_inv_upper(double t) {
  if (t < 0.075) return ndtri_tail(t);
  return ndtri_central(0.5 - t);
}

// Inverse of the half mass for h in [0, 1/2): x >= 0 with Ph(x) = h.
CHANSIM_HD double det_phalf_inv(double h) {
  if (h <= 0.425) return ndtri_central(h);
  return ndtri_tail(0.5 - h);
}

// Sample of P = N(0,1) truncated to (a, b) from a uniform v in (0, 1), by
// inversion in the coordinate with the best resolution for the interval:
// upper-tail mass for a >= 0, its mirror for b <= 0, signed half mass across
// zero. The result is clamped into [a, b] (rounding can leave by an ulp), so a
// split at the sample never produces an inverted interval.
CHANSIM_HD double det_truncated_normal(double a, double b, double v) {
  double x;
  if (a >= 0.0) {
    if (b < 2.5) {
      const double ha = det_phalf(a), hb = det_phalf(b);
      x = det_phalf_inv(ha + v * (hb - ha));
    } else {
      // Tail mass decreases in x: use 1 - v (exact on chansim's uniform grids)
      // so x increases with v, keeping full relative resolution in the tail.
      const double ta = det_qt(a), tb = det_qt(b);
      x = det_qt_inv_upper(tb + (1.0 - v) * (ta - tb));
    }
  } else if (b <= 0.0) {
    const double na = 0.0 - b, nb = 0.0 - a;
    if (nb < 2.5) {
      const double ha = det_phalf(na), hb = det_phalf(nb);
      x = 0.0 - det_phalf_inv(ha + (1.0 - v) * (hb - ha));
    } else {
      const double ta = det_qt(na), tb = det_qt(nb);
      x = 0.0 - det_qt_inv_upper(tb + v * (ta - tb));
    }
  } else {
    const double lo = 0.0 - det_phalf(0.0 - a), hi = det_phalf(b);
    const double h = lo + v * (hi - lo);
    x = h >= 0.0 ? det_phalf_inv(h) : 0.0 - det_phalf_inv(0.0 - h);
  }
  if (x < a) x = a;
  if (x > b) x = b;
  return x;
}

// The P-median of (a, b): the point splitting its mass in halves, in the same
// coordinates as det_truncated_normal (so the dyadic tree and the sampler agree
// on what "half" means).
CHANSIM_HD double det_median(double a, double b) {
  double x;
  if (a >= 0.0) {
    if (b < 2.5) {
      x = det_phalf_inv(0.5 * (det_phalf(a) + det_phalf(b)));
    } else {
      x = det_qt_inv_upper(0.5 * (det_qt(a) + det_qt(b)));
    }
  } else if (b <= 0.0) {
    const double na = 0.0 - b, nb = 0.0 - a;
    if (nb < 2.5) {
      x = 0.0 - det_phalf_inv(0.5 * (det_phalf(na) + det_phalf(nb)));
    } else {
      x = 0.0 - det_qt_inv_upper(0.5 * (det_qt(na) + det_qt(nb)));
    }
  } else {
    const double h = 0.5 * (det_phalf(b) - det_phalf(0.0 - a));
    x = h >= 0.0 ? det_phalf_inv(h) : 0.0 - det_phalf_inv(0.0 - h);
  }
  if (x < a) x = a;
  if (x > b) x = b;
  return x;
}

}  // namespace grc
}  // namespace chansim

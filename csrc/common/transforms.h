// Deterministic transforms from Philox words to floats.
//
// Contract (docs/format.md, "Random variates"): every transform uses only IEEE
// basic operations (+ - * / sqrt) and exact bit manipulation, in the fixed order
// written here, so the C++ core (built with -ffp-contract=off), the NumPy
// reference (chansim.prng.reference) and the Triton kernels (enable_fp_fusion
// off) produce identical bits. Do not reorder an expression without changing all
// three and the golden tests.
//
// Element i of a float32 variate uses word i; element i of a float64 variate
// uses the 64-bit value i (words 2i and 2i+1).
#pragma once
#include <cstdint>
#include <cmath>
#include <cstring>

#include "hd.h"

namespace chansim {
namespace detail {

CHANSIM_HD uint64_t bits_of(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}
CHANSIM_HD double double_of(uint64_t u) {
  double x;
  memcpy(&x, &u, sizeof x);
  return x;
}

}  // namespace detail

// ---- uniforms on symmetric midpoint grids, never 0 or 1 --------------------

// float32 uniform: (2k+1) * 2^-24 with k the top 23 bits of the word.
CHANSIM_HD float uniform_f32(uint32_t w) {
  return static_cast<float>(static_cast<int32_t>(w >> 9)) * 1.1920928955078125e-07f + 5.9604644775390625e-08f;
}
// Exact integer-to-double conversions by exponent splicing: (double)k for k < 2^52
// without an int64 convert instruction (AVX2 has none), same value bit for bit.
CHANSIM_HD double exact_double_u52(uint64_t k) {
  return detail::double_of(0x4330000000000000ull | k) - 4503599627370496.0;
}

// float64 uniform: (2k+1) * 2^-53 with k the top 52 bits of the 64-bit value.
CHANSIM_HD double uniform_f64(uint64_t x) {
  return exact_double_u52(x >> 12) * 2.220446049250313080847263336181640625e-16 +
         1.1102230246251565404236316680908203125e-16;
}
// float64 uniform with all 32 bits of one word: (2w+1) * 2^-33 (exact).
CHANSIM_HD double uniform_f64_from32(uint32_t w) {
  return exact_double_u52(w) * 2.3283064365386962890625e-10 + 1.16415321826934814453125e-10;
}

// ---- natural log for positive normal doubles ------------------------------
// The FreeBSD/musl argument reduction and minimax polynomial: error < 1 ulp.
// det_log's constants, shared with its SIMD rendition (prng_kernels.inc).
struct DetLog {
  static constexpr double ln2_hi = 6.93147180369123816490e-01;
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr double Lg1 = 6.666666666666735130e-01;
  static constexpr double Lg2 = 3.999999999940941908e-01;
  static constexpr double Lg3 = 2.857142874366239149e-01;
  static constexpr double Lg4 = 2.222219843214978396e-01;
  static constexpr double Lg5 = 1.818357216161805012e-01;
  static constexpr double Lg6 = 1.531383769920937332e-01;
  static constexpr double Lg7 = 1.479819860511658591e-01;
};

CHANSIM_HD double det_log(double x) {
  constexpr double ln2_hi = DetLog::ln2_hi, ln2_lo = DetLog::ln2_lo;
  constexpr double Lg1 = DetLog::Lg1, Lg2 = DetLog::Lg2, Lg3 = DetLog::Lg3, Lg4 = DetLog::Lg4;
  constexpr double Lg5 = DetLog::Lg5, Lg6 = DetLog::Lg6, Lg7 = DetLog::Lg7;
  const uint64_t u = detail::bits_of(x);
  // Shift the exponent boundary to sqrt(2)/2 so the mantissa lands in [0.707, 1.414).
  const uint32_t hx = static_cast<uint32_t>(u >> 32) + (0x3ff00000u - 0x3fe6a09eu);
  const int k = static_cast<int>(hx >> 20) - 0x3ff;
  const uint32_t hm = (hx & 0x000fffffu) + 0x3fe6a09eu;
  const double m = detail::double_of((static_cast<uint64_t>(hm) << 32) | (u & 0xffffffffull));
  const double f = m - 1.0;
  const double hfsq = 0.5 * f * f;
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double w = z * z;
  const double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
  const double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
  const double R = t2 + t1;
  const double dk = static_cast<double>(k);
  return s * (hfsq + R) + dk * ln2_lo - hfsq + f + dk * ln2_hi;
}

// ---- inverse normal CDF (Wichura 1988, AS 241 PPND16) ----------------------
// Central region |p - 1/2| <= 0.425.
CHANSIM_HD double ndtri_central(double q) {
  const double r = 0.180625 - q * q;
  const double num =
      ((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r + 6.7265770927008700853e+4) * r +
           4.5921953931549871457e+4) * r + 1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r +
       1.3314166789178437745e+2) * r + 3.3871328727963666080e+0;
  const double den =
      ((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r + 3.9307895800092710610e+4) * r +
           2.1213794301586595867e+4) * r + 5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r +
       4.2313330701600911252e+1) * r + 1.0;
  return q * num / den;
}
// Tail, in three pieces so batch kernels can vectorise the common case:
// s = sqrt(-log t) for t = min(p, 1 - p) in (0, 0.075); |quantile| is
// ndtri_tail_mid(s) for s <= 5 and ndtri_tail_far(s) beyond (p < 1.4e-11).
CHANSIM_HD double ndtri_tail_s(double t) { return std::sqrt(0.0 - det_log(t)); }
CHANSIM_HD double ndtri_tail_mid(double s) {
  const double r = s - 1.6;
  const double num =
      ((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r + 2.41780725177450611770e-1) * r +
           1.27045825245236838258e+0) * r + 3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r +
       4.63033784615654529590e+0) * r + 1.42343711074968357734e+0;
  const double den =
      ((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r + 1.51986665636164571966e-2) * r +
           1.48103976427480074590e-1) * r + 6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r +
       2.05319162663775882187e+0) * r + 1.0;
  return num / den;
}
CHANSIM_HD double ndtri_tail_far(double s) {
  const double r = s - 5.0;
  const double num =
      ((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 1.24266094738807843860e-3) * r +
           2.65321895265761230930e-2) * r + 2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r +
       5.46378491116411436990e+0) * r + 6.65790464350110377720e+0;
  const double den =
      ((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r + 1.84631831751005468180e-5) * r +
           7.86869131145613259100e-4) * r + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r +
       5.99832206555887937690e-1) * r + 1.0;
  return num / den;
}
CHANSIM_HD double ndtri_tail(double t) {
  const double s = ndtri_tail_s(t);
  return s <= 5.0 ? ndtri_tail_mid(s) : ndtri_tail_far(s);
}
// Standard normal quantile of p in (0, 1) (p must lie on one of the grids above,
// where p - 0.5 and 1 - p are exact).
CHANSIM_HD double ndtri(double p) {
  const double q = p - 0.5;
  if (q >= -0.425 && q <= 0.425) return ndtri_central(q);
  if (q < 0.0) return 0.0 - ndtri_tail(p);
  return ndtri_tail(1.0 - p);
}

// ---- the public variates ---------------------------------------------------
CHANSIM_HD float normal_f32(uint32_t w) { return static_cast<float>(ndtri(uniform_f64_from32(w))); }
CHANSIM_HD double normal_f64(uint64_t x) { return ndtri(uniform_f64(x)); }
CHANSIM_HD float exponential_f32(uint32_t w) { return static_cast<float>(0.0 - det_log(uniform_f64_from32(w))); }
CHANSIM_HD double exponential_f64(uint64_t x) { return 0.0 - det_log(uniform_f64(x)); }

}  // namespace chansim

// GPRS / GRC core math: deterministic exp / normal tails against libm, w_P and w_Q
// against direct numerical integration, the stretch function against an
// independent integration in h, sampler determinism and the message format.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "channel/gprs.h"
#include "channel/grc_math.h"
#include "check.h"
#include "entropy/crc32.h"
#include "entropy/elias.h"

using namespace chansim;
using namespace chansim::grc;

namespace {

double rel(double a, double b) { return std::fabs(a - b) / std::fabs(b); }

// Composite Simpson on [a, b] with n (even) panels.
template <class F>
double simpson(F f, double a, double b, int n) {
  const double h = (b - a) / n;
  double s = f(a) + f(b);
  for (int i = 1; i < n; ++i) s += f(a + i * h) * (i % 2 ? 4.0 : 2.0);
  return s * h / 3.0;
}

void test_exp_and_tails() {
  double worst = 0;
  for (double x = -700; x <= 700; x += 0.37) worst = std::fmax(worst, rel(det_exp(x), std::exp(x)));
  std::printf("det_exp max rel err %.3g\n", worst);
  CHECK(worst < 4e-16);
  worst = 0;
  for (double x = -8; x <= 36.9; x += 0.01) worst = std::fmax(worst, rel(det_qt(x), static_cast<double>(0.5L * std::erfc(static_cast<long double>(x) / std::sqrt(2.0L)))));
  std::printf("det_qt max rel err %.3g\n", worst);
  CHECK(worst < 7e-14);  // det_normal_sf: <= 6.1e-14 relative on [0, 37] (detmath.h)
  worst = 0;
  for (double x = -30; x <= 30; x += 0.01) worst = std::fmax(worst, rel(det_phi(x), static_cast<double>(std::exp(-0.5L * x * x) / std::sqrt(2.0L * M_PIl))));
  std::printf("det_phi max rel err %.3g\n", worst);
  CHECK(worst < 2e-15);
  // 1 - exp(-y) at small y, where the naive form loses everything.
  CHECK(rel(det_one_minus_exp_neg(1e-12), -std::expm1(-1e-12)) < 1e-15);
  CHECK(rel(det_one_minus_exp_neg(0.3), -std::expm1(-0.3)) < 1e-15);
  // Masses of narrow intervals in the tails and across zero.
  CHECK(rel(det_mass(5.0, 5.000001), simpson([](double t) { return std::exp(-0.5 * t * t) / std::sqrt(2 * M_PI); }, 5.0, 5.000001, 8)) < 1e-8);
  CHECK(rel(det_mass(-1e-9, 2e-9), 3e-9 / std::sqrt(2 * M_PI)) < 1e-9);
  CHECK(det_mass(-INFINITY, INFINITY) == 1.0);
}

void test_truncated_and_median() {
  const double iv[][2] = {{-INFINITY, INFINITY}, {0.3, 0.31}, {-7.0, -6.5}, {6.0, INFINITY}, {-0.2, 3.0},
                          {-1e-6, 1e-6}, {-2.0, -1.0}, {-INFINITY, -9.0}, {1.0, 4.0}};
  for (auto& ab : iv) {
    double prev = -INFINITY;
    for (int k = 1; k < 64; ++k) {
      const double v = k / 64.0;
      const double x = det_truncated_normal(ab[0], ab[1], v);
      CHECK(x >= ab[0] && x <= ab[1]);
      CHECK(x >= prev);  // monotone in the uniform
      prev = x;
      // Inversion: the mass to the left of x is v of the interval's mass.
      const double left = det_mass(ab[0], x) / det_mass(ab[0], ab[1]);
      CHECK(std::fabs(left - v) < 1e-9);
    }
    const double med = det_median(ab[0], ab[1]);
    CHECK(std::fabs(det_mass(ab[0], med) / det_mass(ab[0], ab[1]) - 0.5) < 1e-9);
  }
}

void test_wp_wq_and_stretch() {
  const double cases[][4] = {{0.7, 0.3, 0.0, 1.0}, {2.5, 0.05, -0.3, 1.2}, {0.0, 0.9, 0.0, 1.0}, {-4.0, 0.5, 0.0, 1.0}};
  for (auto& cs : cases) {
    const GprsTarget t = gprs_target(cs[0], cs[1], cs[2], cs[3]);
    Stretch S(t);
    auto r = [&](double x) {
      const double z = (x - t.m) / t.s;
      return std::exp(-0.5 * z * z + 0.5 * x * x) / t.s;
    };
    auto phi = [](double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); };
    for (double d : {1e-4, 0.01, 0.1 * t.s, t.s, 3 * t.s}) {
      const double a = t.xstar - d, b = t.xstar + d;
      const double wp = simpson(phi, a, b, 2000);
      const double wq = simpson([&](double x) { return r(x) * phi(x); }, a, b, 2000);
      CHECK(rel(S.w_p(d), wp) < 1e-9);
      CHECK(rel(S.w_q(d), wq) < 1e-9);
      // g = E_P[(r - h)_+], integrated directly (the small-d branch avoids w_Q - h w_P).
      const double h = S.level(d);
      const double g = simpson([&](double x) { return (r(x) - h) * phi(x); }, a, b, 4000);
      CHECK(rel(S.g(d), g) < 1e-7);
    }
    // S decreasing in D; S'(D) = -h'(D) / g = c D h / g.
    double prev = INFINITY;
    for (double d = 1e-6; d < t.delta_max; d *= 1.3) {
      const double s = S(d);
      CHECK(s <= prev);
      prev = s;
      if (s > 1e-3 && d > 1e-5) {
        const double eps = d * 1e-5;
        const double num = (S(d - eps) - S(d + eps)) / (2 * eps);
        const double ana = t.c * d * S.level(d) / S.g(d);
        CHECK(rel(num, ana) < 1e-4);
      }
    }
    // Independent check in h: sigma(h) = int_0^h dn / g(n), with g written as
    // w_Q - n w_P in h, integrated by Simpson in n on a sub-range.
    const double d0 = 0.5 * t.s;
    const double h0 = S.level(d0);
    const double sig = simpson(
        [&](double eta) {
          const double dd = std::sqrt(2.0 * (t.log_rstar - std::log(eta)) / t.c);
          return 1.0 / (S.w_q(dd) - eta * S.w_p(dd));
        },
        1e-300 + h0 * 1e-12, h0, 20000);
    std::printf("case mu_q=%g s_q=%g: S(%.3g)=%.12g  direct=%.12g\n", cs[0], cs[1], d0, S(d0), sig);
    CHECK(rel(S(d0), sig) < 1e-5);
  }
}

// Kolmogorov-Smirnov distance of the encoder's samples from q, n = 4000 per
// case: the 0.1 % critical value is 1.949 / sqrt(n) = 0.0308.
GprsResult encode_one(Method m, const GprsTarget& t, uint64_t key) {
  return is_grc(m) ? grc_encode_one(t, key, split_of(m), 100000) : gprs_encode_one(t, key, split_of(m), 100000);
}

// GRC's excess mass int_(a, b) (r - h)_+ dP against Simpson on the clipped
// interval, including levels close to r* (the cancellation-prone case) and
// intervals that straddle or miss the superlevel set.
void test_grc_excess_mass() {
  const double cases[][4] = {{0.7, 0.3, 0.0, 1.0}, {2.5, 0.05, -0.3, 1.2}, {0.0, 0.99, 0.0, 1.0}, {-4.0, 0.5, 0.0, 1.0}};
  for (auto& cs : cases) {
    const GprsTarget t = gprs_target(cs[0], cs[1], cs[2], cs[3]);
    const double rstar = std::exp(t.log_rstar);
    auto r = [&](double x) {
      const double u = x - t.xstar;
      return std::exp(t.log_rstar - 0.5 * t.c * u * u);
    };
    auto phi = [](double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); };
    for (double frac : {0.0, 0.1, 0.5, 0.9, 0.999, 0.999999}) {
      const double h = frac * rstar;
      const double w = h > 0 ? std::sqrt(2 * (t.log_rstar - std::log(h)) / t.c) : 12.0 / std::sqrt(t.c) + 40;
      const double iv[][2] = {{t.xstar - 2 * w, t.xstar + 2 * w}, {t.xstar - 0.3 * w, t.xstar + 0.1 * w},
                              {t.xstar + 0.5 * w, t.xstar + 3 * w}, {t.xstar - w, t.xstar - 0.99 * w}};
      for (auto& ab : iv) {
        const double lo = std::fmax(ab[0], t.xstar - w), hi = std::fmin(ab[1], t.xstar + w);
        const double ref = simpson([&](double x) { return std::fmax(r(x) - h, 0.0) * phi(x); }, lo, hi, 20000);
        const double got = grc_excess_mass(t, ab[0], ab[1], h);
        CHECK(rel(got, ref) < 1e-7 || std::fabs(got - ref) < 1e-14 * std::fmax(ref, 1e-300));
      }
    }
    CHECK(grc_excess_mass(t, -INFINITY, INFINITY, 0.0) == 1.0);
    CHECK(grc_excess_mass(t, -INFINITY, INFINITY, rstar * 1.0000001) == 0.0);
    CHECK(grc_excess_mass(t, t.xstar + 1.0, t.xstar + 1.0, 0.1) == 0.0);
  }
}

void test_exactness() {
  const double cases[][2] = {{0.4, 0.5}, {3.0, 0.05}, {-1.0, 1e-4}};
  for (int meth = 0; meth < 4; ++meth) {
    const Split split = split_of(static_cast<Method>(meth));
    for (auto& cs : cases) {
      const GprsTarget t = gprs_target(cs[0], cs[1], 0.0, 1.0);
      const int n = 4000;
      std::vector<double> u(n);
      for (int i = 0; i < n; ++i) {
        const GprsResult r = encode_one(static_cast<Method>(meth), t, gprs_channel_key(99, 5, i));
        CHECK(r.status == Status::Ok);
        u[i] = 0.5 * std::erfc(-(r.x - cs[0]) / cs[1] / std::sqrt(2.0));
      }
      std::sort(u.begin(), u.end());
      double dn = 0;
      for (int i = 0; i < n; ++i) dn = std::fmax(dn, std::fmax((i + 1.0) / n - u[i], u[i] - static_cast<double>(i) / n));
      std::printf("%s q=N(%g, %g^2): KS D_n = %.4f (critical 0.0308)\n", method_name(static_cast<Method>(meth)), cs[0],
                  cs[1], dn);
      CHECK(dn < 1.949 / std::sqrt(static_cast<double>(n)));
    }
  }
}

void test_encode_decode() {
  for (int meth = 0; meth < 4; ++meth) {
    const Method m = static_cast<Method>(meth);
    const GprsTarget t = gprs_target(1.3, 0.02, 0.0, 1.0);
    for (uint64_t ch = 0; ch < 200; ++ch) {
      const uint64_t key = gprs_channel_key(7, 9, ch);
      const GprsResult r = encode_one(m, t, key);
      CHECK(r.status == Status::Ok);
      CHECK(r.steps == static_cast<uint64_t>(r.depth) + 1 || !is_grc(m));  // GRC: one node per level
      const double x = gprs_decode_one(r.index, key, split_of(m));
      CHECK(x == r.x);
    }
  }
}

void check_message(const std::vector<u128>& idx, const std::vector<uint64_t>& keys, Split split) {
  std::vector<double> bits(idx.size());
  auto msg = gprs_pack(idx.data(), keys.data(), idx.size(), split, bits.data());
  Unpacked u = gprs_unpack(msg.data(), msg.size(), keys.data(), idx.size());
  CHECK(u.split == split);
  for (std::size_t i = 0; i < idx.size(); ++i) CHECK(u.index[i] == idx[i]);
  double total = 0;
  for (double b : bits) total += b;
  if (split == Split::Dyadic) {
    int exact = 0;
    for (auto h : idx) exact += elias_delta_bits(h);
    CHECK(total == exact);
    CHECK(msg.size() == 16 + static_cast<std::size_t>((exact + 7) / 8) + 4);
  } else {
    // Arithmetic code: within 2 bits of the ideal length, plus byte padding.
    CHECK(msg.size() * 8 <= 160 + std::ceil(total) + 2 + 7);
  }
  // Every truncation and every single-bit flip is rejected.
  int rejected = 0, total_cases = 0;
  for (std::size_t len = 0; len < msg.size(); ++len) {
    ++total_cases;
    try {
      gprs_unpack(msg.data(), len, keys.data(), idx.size());
    } catch (const FormatError&) {
      ++rejected;
    }
  }
  for (std::size_t bit = 0; bit < msg.size() * 8; ++bit) {
    auto bad = msg;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    ++total_cases;
    try {
      gprs_unpack(bad.data(), bad.size(), keys.data(), idx.size());
    } catch (const FormatError&) {
      ++rejected;
    }
  }
  CHECK(rejected == total_cases);
}

void test_format() {
  std::vector<u128> idx = {1, 2, 3, 1000, (u128(1) << 100) | 12345};
  std::vector<uint64_t> keys = {1, 2, 3, 4, 5};
  check_message(idx, keys, Split::Dyadic);
  check_message(idx, keys, Split::Sample);
  // Real split-on-sample indices: the arithmetic code round-trips them.
  const GprsTarget t = gprs_target(-0.4, 1e-4, 0.0, 1.0);
  std::vector<u128> real;
  std::vector<uint64_t> rkeys;
  for (uint64_t ch = 0; ch < 300; ++ch) {
    rkeys.push_back(gprs_channel_key(3, 4, ch));
    real.push_back(gprs_encode_one(t, rkeys.back(), Split::Sample, 100000).index);
  }
  std::vector<double> bits(real.size());
  auto msg = gprs_pack(real.data(), rkeys.data(), real.size(), Split::Sample, bits.data());
  Unpacked u = gprs_unpack(msg.data(), msg.size(), rkeys.data(), real.size());
  for (std::size_t i = 0; i < real.size(); ++i) CHECK(u.index[i] == real[i]);
  // GRC messages: the same bitstream, the method byte says which sampler.
  for (Method m : {Method::GrcSample, Method::GrcDyadic}) {
    std::vector<u128> gidx;
    for (uint64_t ch = 0; ch < 300; ++ch) gidx.push_back(grc_encode_one(t, rkeys[ch], split_of(m), 100000).index);
    auto gmsg = gprs_pack(gidx.data(), rkeys.data(), gidx.size(), m, bits.data());
    CHECK(gmsg[5] == static_cast<uint8_t>(m));
    Unpacked g = gprs_unpack(gmsg.data(), gmsg.size(), rkeys.data(), gidx.size());
    CHECK(g.method == m && g.split == split_of(m));
    for (std::size_t i = 0; i < gidx.size(); ++i) CHECK(g.index[i] == gidx[i]);
  }
}

}  // namespace

int main() {
  test_exp_and_tails();
  test_truncated_and_median();
  test_wp_wq_and_stretch();
  test_grc_excess_mass();
  test_exactness();
  test_encode_decode();
  test_format();
  return chansim_test::finish("test_grc");
}

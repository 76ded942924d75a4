#include "channel/gprs.h"

#include <cmath>
#include <limits>
#include <queue>
#include <string>

#include "channel/grc_math.h"
#include "channel/tree.h"
#include "common/errors.h"
#include "common/philox.h"
#include "common/transforms.h"
#include "entropy/arith.h"
#include "entropy/bitio.h"
#include "entropy/crc32.h"
#include "entropy/elias.h"

namespace chansim {
namespace grc {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Panel ratio 2: the nearest singularity of the integrand (u = 0) is then 3
// half-widths from the panel centre, and 10 nodes leave a relative error of
// about (3 + sqrt 8)^-20 ~ 1e-15 per panel.
constexpr double kRho = 2.0;
constexpr int kMaxPanels = 160;  // u up to u_min * 2^160; beyond, F is its constant limit

}  // namespace

std::string gprs_check(double mu_q, double sigma_q, double mu_p, double sigma_p) {
  if (!std::isfinite(mu_q) || !std::isfinite(mu_p)) return "means must be finite";
  if (!std::isfinite(sigma_q) || !std::isfinite(sigma_p)) return "scales must be finite";
  if (!(sigma_q > 0.0) || !(sigma_p > 0.0)) return "scales must be > 0";
  if (sigma_q > sigma_p)
    return "sigma_q > sigma_p: dq/dp is unbounded (D_inf = inf) and GPRS needs D_inf < inf; "
           "use sigma_q < sigma_p, or sigma_q == sigma_p with mu_q == mu_p";
  if (sigma_q == sigma_p) {
    if (mu_q != mu_p)
      return "sigma_q == sigma_p with mu_q != mu_p: dq/dp is unbounded (D_inf = inf) and GPRS needs "
             "D_inf < inf; use a proposal scale sigma_p > sigma_q (or an exact scheme for equal variances)";
    return "";
  }
  const double s = sigma_q / sigma_p;
  const double m = (mu_q - mu_p) / sigma_p;
  const double one_m_s2 = (1.0 - s) * (1.0 + s);
  const double xstar = m / one_m_s2;
  if (!(std::fabs(xstar) <= 30.0))
    return "the mode of dq/dp lies more than 30 prior standard deviations from mu_p "
           "(|mu_q - mu_p| / sigma_p / (1 - sigma_q^2/sigma_p^2) > 30; D_inf > 450 nats)";
  // Samples are float64 in prior units: below this width the grid of doubles
  // near the mode (spacing ~1e-16 max(1, |x*|)) would resolve q with fewer
  // than ~1e6 levels per standard deviation, and exactness would be lost.
  const double ax = std::fabs(xstar);
  if (!(s >= 1e-9 * (ax > 1.0 ? ax : 1.0)))
    return "sigma_q / sigma_p < 1e-9 * max(1, |x*|): the posterior is narrower than float64 samples "
           "in prior units can represent exactly; rescale the prior (smaller sigma_p)";
  const double log_rstar = (0.0 - det_log(s)) + 0.5 * m * xstar;
  if (!(log_rstar <= 700.0)) return "D_inf > 700 nats is beyond double-precision arrival times";
  return "";
}

GprsTarget gprs_target(double mu_q, double sigma_q, double mu_p, double sigma_p) {
  GprsTarget t;
  if (sigma_q == sigma_p && mu_q == mu_p) {
    t.trivial = true;
    return t;
  }
  t.s = sigma_q / sigma_p;
  t.m = (mu_q - mu_p) / sigma_p;
  const double one_m_s2 = (1.0 - t.s) * (1.0 + t.s);
  t.c = one_m_s2 / (t.s * t.s);
  t.xstar = t.m / one_m_s2;
  // log r(x*) = -log s + m^2 / (2 (1 - s^2)) = -log s + m x* / 2.
  t.log_rstar = (0.0 - det_log(t.s)) + 0.5 * t.m * t.xstar;
  const double zq = t.m * t.s / one_m_s2;  // (x* - m) / s
  t.qstar = det_phi(zq) / t.s;
  // Beyond delta_max the level h is below e^-40 and the superlevel set holds
  // all but a negligible part of Q, so S < e^-40 there.
  const double lr = t.log_rstar > 0.0 ? t.log_rstar : 0.0;
  const double d1 = std::sqrt(2.0 * (40.0 + lr) / t.c);
  const double d2 = std::fabs(t.xstar - t.m) + 12.0 * t.s;
  t.delta_max = d1 > d2 ? d1 : d2;
  return t;
}

// ---- the stretch function ----------------------------------------------------

Stretch::Stretch(const GprsTarget& t) : t_(t) {
  u_min_ = 1.0 / t.delta_max;
  // F(u) -> 3 r* / (2 q*) = 3 / (2 phi(x*)) as u -> inf (g ~ (2/3) c q* d^3).
  f_inf_ = 1.5 / det_phi(t.xstar);
  cum_.push_back(0.0);
}

double Stretch::level(double delta) const {
  return det_exp(t_.log_rstar - 0.5 * t_.c * delta * delta);
}

double Stretch::w_p(double delta) const { return det_mass(t_.xstar - delta, t_.xstar + delta); }

double Stretch::w_q(double delta) const {
  const double lo = (t_.xstar - delta - t_.m) / t_.s, hi = (t_.xstar + delta - t_.m) / t_.s;
  return det_mass(lo, hi);
}

double Stretch::g(double delta) const {
  const double scale = std::fabs(t_.xstar) + 1.0 / t_.s;
  if (delta * scale <= 1.0) {
    // Near the mode w_Q and h w_P agree to O(d^2): use
    //   g = q* d int_{-1}^{1} exp(-x* d t - d^2 t^2 / (2 s^2)) (1 - exp(-c d^2 (1 - t^2) / 2)) dt,
    // whose integrand is smooth and free of cancellation.
    const double inv2s2 = 0.5 / (t_.s * t_.s);
    double acc = 0.0;
    for (int j = 0; j < kGlHalf; ++j) {
      const double tt = kGlX[j];
      const double quad = delta * delta * tt * tt * inv2s2;
      const double lin = t_.xstar * delta * tt;
      const double gap = det_one_minus_exp_neg(0.5 * t_.c * delta * delta * (1.0 - tt * tt));
      acc = acc + kGlW[j] * gap * (det_exp(0.0 - quad - lin) + det_exp(0.0 - quad + lin));
    }
    return t_.qstar * delta * acc;
  }
  return w_q(delta) - level(delta) * w_p(delta);
}

// F(u) = c h(d) d^3 / g(d) at d = 1/u, so that S(D) = int_0^{1/D} F(u) du.
double Stretch::integrand(double u) const {
  const double d = 1.0 / u;
  const double h = level(d);
  if (h == 0.0) return 0.0;
  return t_.c * h * d * d * d / g(d);
}

double Stretch::panel(double u0, double u1) const {
  const double mid = 0.5 * (u0 + u1), half = 0.5 * (u1 - u0);
  double acc = 0.0;
  for (int j = 0; j < kGlHalf; ++j)
    acc = acc + kGlW[j] * (integrand(mid - half * kGlX[j]) + integrand(mid + half * kGlX[j]));
  return half * acc;
}

double Stretch::operator()(double delta) {
  if (!(delta > 0.0)) return kInf;
  if (delta >= t_.delta_max) return 0.0;
  const double u = 1.0 / delta;
  // Panel k spans [u_min rho^k, u_min rho^(k+1)].
  double lo = u_min_;
  std::size_t k = 0;
  while (k < static_cast<std::size_t>(kMaxPanels)) {
    const double hi = lo * kRho;
    if (u <= hi) break;
    if (k + 1 >= cum_.size()) cum_.push_back(cum_[k] + panel(lo, hi));
    lo = hi;
    ++k;
  }
  if (k == static_cast<std::size_t>(kMaxPanels)) return cum_[k] + f_inf_ * (u - lo);
  return cum_[k] + panel(lo, u);
}

// ---- encoder and decoder -------------------------------------------------------

uint64_t gprs_channel_key(uint64_t seed, uint64_t stream, uint64_t channel) {
  return philox_u64(seed, stream, channel);
}

namespace {
struct Node {
  double a, b, t;
  u128 index;
  int depth;
};
struct Later {
  bool operator()(const Node& x, const Node& y) const {
    if (x.t != y.t) return x.t > y.t;
    return x.index > y.index;
  }
};
}  // namespace

GprsResult gprs_encode_one(const GprsTarget& t, uint64_t key, Split split, uint64_t max_steps) {
  GprsResult res;
  if (t.trivial) {
    // r = 1: sigma(h) = -log(1 - h) is infinite at r, so the root is accepted.
    res.x = det_truncated_normal(-kInf, kInf, node_words(key, 1).u);
    res.steps = 1;
    return res;
  }
  Stretch S(t);
  const double xs = t.xstar;
  std::priority_queue<Node, std::vector<Node>, Later> frontier;
  frontier.push({-kInf, kInf, exponential_f64(node_words(key, 1).w23), 1, 0});
  while (!frontier.empty()) {
    const Node nd = frontier.top();
    frontier.pop();
    if (++res.steps > max_steps) {
      res.status = Status::StepLimit;
      return res;
    }
    const double x = det_truncated_normal(nd.a, nd.b, node_words(key, nd.index).u);
    const double dx = std::fabs(x - xs);
    const double sx = S(dx);
    if (nd.t <= sx) {
      res.x = x;
      res.index = nd.index;
      res.depth = nd.depth;
      return res;
    }
    // Every point of a child's subtree arrives after the child's first
    // arrival, and r on the child is at most r at its point nearest x*: the
    // child is kept only if that bound still allows an acceptance. For
    // split-on-sample the far child is always dropped (its bound is r(x),
    // already rejected at an earlier time), so the search is a single path.
    const double c = split_point(nd.a, nd.b, x, split);
    const double bounds[2][2] = {{nd.a, c}, {c, nd.b}};
    for (int side = 0; side < 2; ++side) {
      const double a = bounds[side][0], b = bounds[side][1];
      const double mass = det_mass(a, b);
      if (!(mass > 0.0)) continue;
      const u128 child = (nd.index << 1) | side;  // 2H + side
      const double tc = nd.t + exponential_f64(node_words(key, child).w23) / mass;
      const double dist = xs < a ? a - xs : (xs > b ? xs - b : 0.0);
      if (dist > 0.0) {
        const double bound = dist == dx ? sx : S(dist);
        if (!(tc <= bound)) continue;
      }
      if (nd.depth + 1 > kMaxDepth) {
        res.status = Status::DepthLimit;
        return res;
      }
      frontier.push({a, b, tc, child, nd.depth + 1});
    }
  }
  // Unreachable: the child holding x* always has an infinite bound.
  res.status = Status::StepLimit;
  return res;
}

double gprs_decode_one(u128 index, uint64_t key, Split split) {
  int depth = 0;
  for (u128 h = index; h > 1; h >>= 1) ++depth;
  double a = -kInf, b = kInf;
  for (int k = 0; k < depth; ++k) {
    const u128 node = index >> (depth - k);
    const double x = split == Split::Sample ? det_truncated_normal(a, b, node_words(key, node).u) : 0.0;
    const double c = split_point(a, b, x, split);
    if ((index >> (depth - k - 1)) & 1) a = c;
    else b = c;
  }
  return det_truncated_normal(a, b, node_words(key, index).u);
}

// ---- message format ---------------------------------------------------------------
// The bit-level codes are the entropy layer's: bit I/O (entropy/bitio.h), the
// binary arithmetic coder (entropy/arith.h), Elias gamma/delta
// (entropy/elias.h) and CRC-32 (entropy/crc32.h).

namespace {
constexpr uint8_t kMagic[4] = {'C', 'S', 'G', 'P'};
constexpr uint8_t kVersion = 1;
constexpr std::size_t kHeader = 16, kTrailer = 4;
constexpr uint32_t kFair = 32768;  // P(0) = 1/2 in the arithmetic coder's 16-bit units

double log2_prob16(uint32_t p) { return std::log2(static_cast<double>(p) / 65536.0); }

}  // namespace

uint32_t gprs_left_prob16(double a, double c, double b) {
  const double ratio = det_mass(a, c) / det_mass(a, b);
  const double scaled = ratio * 65536.0 + 0.5;
  if (!(scaled >= 1.0)) return 1;
  if (scaled >= 65535.0) return 65535;
  return static_cast<uint32_t>(scaled);
}

std::vector<uint8_t> gprs_pack(const u128* index, const uint64_t* keys, std::size_t n, Method method, double* bits) {
  const Split split = split_of(method);
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  out.push_back(kVersion);
  out.push_back(static_cast<uint8_t>(method));
  out.push_back(0);
  out.push_back(0);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(n) >> (8 * i)));
  BitWriter w{out};
  if (split == Split::Dyadic) {
    // Elias delta of each heap index: gamma(depth + 1), then its depth path bits.
    const auto put = [&w](unsigned bit) { w.put(bit); };
    for (std::size_t i = 0; i < n; ++i) {
      elias_delta_put(index[i], put);
      if (bits) bits[i] = elias_delta_bits(index[i]);
    }
  } else {
    ArithEncoder enc{w};
    const auto put_fair = [&enc](unsigned bit) { enc.encode(bit, kFair); };
    for (std::size_t i = 0; i < n; ++i) {
      const int l = floor_log2(index[i]);
      const int ll = floor_log2(static_cast<uint64_t>(l + 1));
      elias_gamma_put(static_cast<uint64_t>(l + 1), put_fair);
      double cost = 2 * ll + 1;
      // Replay the splits exactly as the decoder will.
      double a = -kInf, b = kInf;
      for (int k = 0; k < l; ++k) {
        const u128 node = index[i] >> (l - k);
        const double c = det_truncated_normal(a, b, node_words(keys[i], node).u);
        const uint32_t p0 = gprs_left_prob16(a, c, b);
        const unsigned bit = static_cast<unsigned>((index[i] >> (l - k - 1)) & 1);
        enc.encode(bit, p0);
        cost -= bit ? log2_prob16(65536 - p0) : log2_prob16(p0);
        if (bit) a = c;
        else b = c;
      }
      if (bits) bits[i] = cost;
    }
    enc.finish();
  }
  const uint32_t crc = crc32(out.data(), out.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  return out;
}

Unpacked gprs_unpack(const uint8_t* data, std::size_t size, const uint64_t* keys, std::size_t expected_n) {
  if (size < kHeader + kTrailer) throw FormatError("GPRS message too short for its header");
  for (int i = 0; i < 4; ++i)
    if (data[i] != kMagic[i]) throw FormatError("not a GPRS message (bad magic)");
  if (data[4] != kVersion)
    throw FormatError("GPRS message version " + std::to_string(data[4]) + " is not supported (expected 1)");
  if (data[5] > 3) throw FormatError("GPRS message names unknown method " + std::to_string(data[5]));
  if (data[6] != 0 || data[7] != 0) throw FormatError("GPRS message has nonzero reserved bytes");
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) stored |= static_cast<uint32_t>(data[size - 4 + i]) << (8 * i);
  if (crc32(data, size - 4) != stored) throw FormatError("GPRS message checksum mismatch (corrupted)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(data[8 + i]) << (8 * i);
  if (n != expected_n)
    throw FormatError("GPRS message holds " + std::to_string(n) + " channels, but " + std::to_string(expected_n) +
                      " prior parameters were given");
  const std::size_t payload = size - kHeader - kTrailer;
  // Every channel costs at least one whole bit (the gamma code's last bit is a
  // fair coin in both layouts): a larger count is corrupt, and checking it
  // first keeps the allocation bounded by the input size.
  if (n > static_cast<uint64_t>(payload) * 8) throw FormatError("GPRS message truncated (too few bits)");
  Unpacked u;
  u.method = static_cast<Method>(data[5]);
  u.split = split_of(u.method);
  u.index.resize(static_cast<std::size_t>(n));
  BitReader r(data + kHeader, static_cast<uint64_t>(payload) * 8, "GPRS message truncated inside the index bitstream");
  const char* too_deep = "GPRS message names a node deeper than 126 (corrupted)";
  if (u.split == Split::Dyadic) {
    const auto get = [&r]() { return r.get(); };
    for (std::size_t i = 0; i < n; ++i)
      if (!elias_delta_get(get, kMaxDepth, &u.index[i])) throw FormatError(too_deep);
    if ((r.pos + 7) / 8 != payload) throw FormatError("GPRS message has trailing bytes after the last index");
    while (!r.at_end())
      if (r.get() != 0) throw FormatError("GPRS message has nonzero padding bits");
    return u;
  }
  ArithDecoder dec(r);
  const auto get_fair = [&dec]() { return dec.decode(kFair); };
  for (std::size_t i = 0; i < n; ++i) {
    uint64_t lp1;
    if (!elias_gamma_get(get_fair, static_cast<uint64_t>(kMaxDepth) + 1, &lp1)) throw FormatError(too_deep);
    const int l = static_cast<int>(lp1) - 1;
    u128 h = 1;
    double a = -kInf, b = kInf;
    for (int k = 0; k < l; ++k) {
      const double c = det_truncated_normal(a, b, node_words(keys[i], h).u);
      const unsigned bit = dec.decode(gprs_left_prob16(a, c, b));
      h = (h << 1) | bit;
      if (bit) a = c;
      else b = c;
    }
    u.index[i] = h;
  }
  // The encoder's flush ends at most 32 bits past the decoder's read position.
  if (r.pos + 8 < r.size_bits && r.pos + 8 < payload * 8)
    throw FormatError("GPRS message has trailing bytes after the last index");
  return u;
}

}  // namespace grc
}  // namespace chansim

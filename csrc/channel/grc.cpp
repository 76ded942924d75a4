// Greedy rejection coding (GRC) for 1-D Gaussian pairs on the GPRS search tree.
//
// Derivation of the per-node quantities (Harsha et al.'s greedy rejection
// sampler on a partition, as generalised by GRC): let a(x) be the density of
// samples accepted at a node's ancestors. By induction a(x) = p(x) min(r(x), H)
// with H the sum of the ancestors' levels, so the remaining target density on
// the node's interval B is p (r - H)_+ and, when children are chosen by their
// remaining Q-mass, the probability of reaching the node equals that mass,
// pi = int_B (r - H)_+ dP. The node's proposal X ~ P|B has unconditional
// density pi p(x) / P(B) = L p(x); accepting min(r - H, L)_+ of it uses as much
// of the remaining target as the proposal allows. Summed over all steps the
// accepted density is p min(r, sum of levels) -> q: the sample is exact.
#include <cmath>
#include <limits>

#include "channel/gprs.h"
#include "channel/grc_math.h"
#include "channel/tree.h"
#include "common/detmath.h"
#include "common/transforms.h"

namespace chansim {
namespace grc {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Above 2 bits of cancellation in Q(I) - h P(I) the excess mass is integrated
// directly, on panels no wider than sigma_q (where both densities and r vary
// smoothly), up to this many panels; beyond, the difference is used.
constexpr int kMaxExcessPanels = 256;

// p(x) (r(x) - h) for x in the superlevel interval, gap = log r* - log h.
// Near the level it is h p(x) expm1(y), y = log r(x) - log h, which keeps its
// relative accuracy where r - h is small; elsewhere q(x) - h p(x) loses < 1 bit.
double excess_density(const GprsTarget& t, double x, double gap, double h) {
  const double u = x - t.xstar;
  double y = gap - 0.5 * t.c * (u * u);
  if (!(y > 0.0)) return 0.0;
  if (y > 1.0) return det_phi((x - t.m) / t.s) / t.s - h * det_phi(x);
  return h * det_phi(x) * (y * det_expm1_ratio(y));
}

}  // namespace

double grc_excess_mass(const GprsTarget& t, double a, double b, double h) {
  if (!(a < b)) return 0.0;
  if (!(h > 0.0)) return det_mass((a - t.m) / t.s, (b - t.m) / t.s);
  const double gap = t.log_rstar - det_log(h);
  if (!(gap > 0.0)) return 0.0;
  // {r >= h} = [x* - w, x* + w].
  const double w = std::sqrt(2.0 * gap / t.c);
  const double lo = a > t.xstar - w ? a : t.xstar - w;
  const double hi = b < t.xstar + w ? b : t.xstar + w;
  if (!(lo < hi)) return 0.0;
  const double qm = det_mass((lo - t.m) / t.s, (hi - t.m) / t.s);
  const double hp = h * det_mass(lo, hi);
  const double diff = qm - hp;
  if (hp <= 0.25 * qm) return diff;
  const double panels = std::ceil((hi - lo) / t.s);
  if (!(panels <= kMaxExcessPanels)) return diff > 0.0 ? diff : 0.0;
  const int np = static_cast<int>(panels);
  const double width = (hi - lo) / np;
  double acc = 0.0;
  for (int k = 0; k < np; ++k) {
    const double mid = lo + (k + 0.5) * width, half = 0.5 * width;
    double panel = 0.0;
    for (int j = 0; j < kGlHalf; ++j)
      panel = panel + kGlW[j] * (excess_density(t, mid - half * kGlX[j], gap, h) +
                                 excess_density(t, mid + half * kGlX[j], gap, h));
    acc = acc + half * panel;
  }
  return acc;
}

GprsResult grc_encode_one(const GprsTarget& t, uint64_t key, Split split, uint64_t max_steps) {
  GprsResult res;
  if (t.trivial) {
    // r = 1: the root's level is L = 1 and every proposal is accepted.
    res.x = det_truncated_normal(-kInf, kInf, node_words(key, 1).u);
    res.steps = 1;
    return res;
  }
  double a = -kInf, b = kInf;
  double level = 0.0;  // H: the sum of the ancestors' levels
  double reach = 1.0;  // pi = int_B (r - H)_+ dP
  double pmass = 1.0;  // P(B)
  u128 node = 1;
  int depth = 0;
  for (;;) {
    if (++res.steps > max_steps) {
      res.status = Status::StepLimit;
      return res;
    }
    const NodeWords w = node_words(key, node);
    const double x = det_truncated_normal(a, b, w.u);
    const double step_level = reach / pmass;  // L
    const double u = x - t.xstar;
    const double rx = det_exp(t.log_rstar - 0.5 * t.c * (u * u));
    if (uniform_f64(w.w23) * step_level < rx - level) {
      res.x = x;
      res.index = node;
      res.depth = depth;
      return res;
    }
    if (depth + 1 > kMaxDepth) {
      res.status = Status::DepthLimit;
      return res;
    }
    const double h = level + step_level;
    const double c = split_point(a, b, x, split);
    const double left = grc_excess_mass(t, a, c, h);
    const double right = grc_excess_mass(t, c, b, h);
    bool go_right;
    if (left + right > 0.0) {
      go_right = node_child_uniform(key, node) * (left + right) >= left;
    } else {
      // Only rounding leaves no remaining mass after a rejection (the exact
      // rejection probability is the sum): keep the part holding the mode.
      go_right = t.xstar > c;
    }
    if (go_right) {
      a = c;
      reach = right;
    } else {
      b = c;
      reach = left;
    }
    pmass = det_mass(a, b);
    level = h;
    node = (node << 1) | (go_right ? 1u : 0u);  // 2H + side
    ++depth;
  }
}

}  // namespace grc
}  // namespace chansim

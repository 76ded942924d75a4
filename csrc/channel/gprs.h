// Branch-and-bound greedy Poisson rejection sampling (GPRS; Flamich, NeurIPS
// 2023) and greedy rejection coding (GRC; Flamich, Markou & Hernandez-Lobato,
// NeurIPS 2023) for 1-D Gaussian pairs, one independent channel per element.
//
// Standardised coordinates: x = (z - mu_p) / sigma_p, so P = N(0, 1) and
// Q = N(m, s^2) with m = (mu_q - mu_p) / sigma_p, s = sigma_q / sigma_p < 1.
// r = dQ/dP is a concave-quadratic exponential with mode x* = m / (1 - s^2),
// so every superlevel set {r >= h} is the interval [x* - D, x* + D] with
// h = r* exp(-c D^2 / 2), c = 1/s^2 - 1. The stretch function sigma(h) of GPRS
// is therefore a function S(D) of the half-width D = |x - x*|, and the
// acceptance test T <= sigma(r(x)) is T <= S(|x - x*|): no log-ratio is ever
// differenced.
//
// Randomness (docs/format.md §4): channel i has the key
//   k_i = philox_u64(seed, stream, i)
// and heap node H (root 1, children 2H left / 2H + 1 right, H < 2^127) draws
// the Philox block with key k_i and counter (H mod 2^64, H >> 64):
//   words 0,1 -> U = uniform_f64, the node's sample X = P truncated to its
//                interval by inversion of U;
//   words 2,3 -> E = exponential_f64, its arrival T = T_parent + E / P(interval).
// The decoder replays the splits from H alone, so it never needs S or T.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/errors.h"
#include "common/u128.h"  // heap indices reach 2^127

namespace chansim {
namespace grc {

enum class Split : int { Sample = 0, Dyadic = 1 };

// The method byte of a message: bit 0 is the split rule, bit 1 the sampler
// (the decoder's replay is the same for both samplers).
enum class Method : uint8_t { GprsSample = 0, GprsDyadic = 1, GrcSample = 2, GrcDyadic = 3 };
inline Split split_of(Method m) { return (static_cast<uint8_t>(m) & 1) ? Split::Dyadic : Split::Sample; }
inline bool is_grc(Method m) { return static_cast<uint8_t>(m) >= 2; }
inline const char* method_name(Method m) {
  static const char* const names[4] = {"gprs-sample", "gprs-dyadic", "grc-sample", "grc-dyadic"};
  return names[static_cast<uint8_t>(m) & 3];
}

// Deepest node a message can name: H < 2^127.
constexpr int kMaxDepth = 126;

// The target of one channel in standardised coordinates, with the constants
// of r and of the stretch function. `trivial` marks Q == P (D = 0).
struct GprsTarget {
  bool trivial = false;
  double m = 0, s = 1, c = 0;
  double xstar = 0;      // mode of r
  double log_rstar = 0;  // D_inf in nats
  double qstar = 0;      // density of Q at x*
  double delta_max = 0;  // S(D) = 0 (to < e^-40) for D >= delta_max
};

// Empty string if (mu_q, sigma_q, mu_p, sigma_p) is a valid GPRS channel, else
// the reason (GPRS needs D_inf < inf).
std::string gprs_check(double mu_q, double sigma_q, double mu_p, double sigma_p);
GprsTarget gprs_target(double mu_q, double sigma_q, double mu_p, double sigma_p);

// S(D) = sigma(h(D)) = int_D^inf c d h(d) / g(h(d)) dd with g(h) = w_Q(h) - h w_P(h),
// integrated in u = 1/d on geometric panels (ratio 2) by 10-point
// Gauss-Legendre; panel sums are cached, so a channel pays for each panel once.
class Stretch {
 public:
  explicit Stretch(const GprsTarget& t);
  double operator()(double delta);
  // g = E_P[(r - h)_+] at the level h(D) (for tests).
  double g(double delta) const;
  double w_p(double delta) const;
  double w_q(double delta) const;
  double level(double delta) const;  // h(D)

 private:
  double integrand(double u) const;
  double panel(double u0, double u1) const;
  GprsTarget t_;
  double u_min_, f_inf_;
  std::vector<double> cum_;  // cum_[k] = int_{u_min}^{u_min * rho^k} F
};

enum class Status : int { Ok = 0, StepLimit = 1, DepthLimit = 2 };

struct GprsResult {
  double x = 0;     // standardised sample
  u128 index = 1;   // heap index of the accepted node
  int depth = 0;
  uint64_t steps = 0;  // nodes examined (popped from the search frontier)
  Status status = Status::Ok;
};

uint64_t gprs_channel_key(uint64_t seed, uint64_t stream, uint64_t channel);

// Encodes one channel (already validated).
GprsResult gprs_encode_one(const GprsTarget& t, uint64_t key, Split split, uint64_t max_steps);

// The standardised sample of heap node `index` (depth = floor(log2 index)).
double gprs_decode_one(u128 index, uint64_t key, Split split);

// ---- greedy rejection coding (GRC) on the same tree ------------------------------
// Node v with interval B, cumulative level H (the sum of its ancestors' L) and
// reach probability pi = int_B (r - H)_+ dP proposes x = TN(B, U), accepts iff
// V L < r(x) - H with L = pi / P(B) (probability min(r(x) - H, L)_+ / L), and
// otherwise descends to a child C with probability pi_C / (pi_left + pi_right),
// pi_C = int_C (r - H - L)_+ dP: the remaining Q-mass of C (docs/format.md §4.1).
// Every node is one step; the index is the accepted node.
GprsResult grc_encode_one(const GprsTarget& t, uint64_t key, Split split, uint64_t max_steps);

// int_(a, b) (r - h)_+ dP for the target's r (standardised coordinates).
double grc_excess_mass(const GprsTarget& t, double a, double b, double h);

// ---- messages (docs/format.md §4) ---------------------------------------------
// Header (magic, version, method, n), a bitstream, CRC32. Dyadic: the heap
// index of each channel Elias-delta coded (its path bits are fair coins, as
// every dyadic split halves the prior mass). Split on sample: one binary
// arithmetic code over all channels: gamma(depth + 1) in fair bits, then each
// path bit with P(left) = P(left child) / P(node), quantised to 16 bits;
// the decoder recomputes these masses while replaying the splits, so the path
// costs about -log2 P(final interval) instead of one bit per level. The codes
// themselves live in the entropy layer (entropy/elias.h, arith.h, crc32.h).
// bits[i] (may be null) receives channel i's code length in bits (fractional
// for the arithmetic code: the sum of -log2 of the coded probabilities).
std::vector<uint8_t> gprs_pack(const u128* index, const uint64_t* keys, std::size_t n, Method method, double* bits);
inline std::vector<uint8_t> gprs_pack(const u128* index, const uint64_t* keys, std::size_t n, Split split,
                                      double* bits) {
  return gprs_pack(index, keys, n, static_cast<Method>(split), bits);
}
// Throws chansim::FormatError (common/errors.h) with the reason on any
// malformed message.
struct Unpacked {
  Method method;
  Split split;
  std::vector<u128> index;
};
Unpacked gprs_unpack(const uint8_t* data, std::size_t size, const uint64_t* keys, std::size_t expected_n);

// P(left child) / P(node) of a split at c, quantised to [1, 65535] / 65536.
uint32_t gprs_left_prob16(double a, double c, double b);

}  // namespace grc
}  // namespace chansim

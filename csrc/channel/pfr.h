// Poisson functional representation (Li & El Gamal 2018) for diagonal Gaussian
// pairs, searched chunk by chunk.
//
// Candidates are shared: candidate n (1-based) of a chunk with d coordinates and
// candidate stream S is eps[i] = normal_f32(word (n-1)*d + i of (seed, S)), and
// the sample is z_i = mu_p_i + sigma_p_i * eps_i. Offsets are 64-bit, so n*d may
// exceed 2^32. In the standardised coordinates eps of p,
//     log r(eps) = c0 + sum_i lin_i eps_i + sum_i quad_i eps_i^2       (r = dq/dp)
// (quad = 0 for equal variances: the score is one dot product, computed on the
// fly from regenerated candidates, never a stored matrix).
//
// The encoder-private arrival times use float64 exponentials E_n (value n-1) of
// stream A under key seed ^ 0x9E3779B97F4A7C15 (independent of the candidates):
//   PFR: T_n = E_1 + ... + E_n;  ORC (budget K): T_n = sum_{i<=n} E_i K/(K-i+1).
// The chosen index is argmin_n (log T_n - log r(eps_n)), ties to the smaller n.
// Search stops early when log T_n - log_r_bound >= best score (no later
// candidate can win), which is the exact stopping rule when log_r_bound = D_inf.
#pragma once
#include <cstddef>
#include <cstdint>

namespace chansim {
namespace pfr {

enum class PfrArrivals : int { Poisson = 0, Ordered = 1 };

struct PfrChunk {
  const double* lin;   // d coefficients
  const double* quad;  // d coefficients, or nullptr when all are zero
  double c0;
  std::size_t d;
  uint64_t cand_stream;
  uint64_t arrival_stream;
};

struct PfrSearch {
  uint64_t seed;
  uint64_t max_candidates;  // budget K (>= 1)
  double log_r_bound;       // sup log r over candidates (+inf if unknown)
  PfrArrivals arrivals;
};

struct PfrResult {
  uint64_t index;     // 1-based chosen candidate
  uint64_t examined;  // candidates scored before stopping (depends on threads)
  bool stopped;       // the stopping rule fired (else the budget ran out)
};

// Searches one chunk; uses up to `threads` threads over candidate ranges. The
// result index does not depend on the thread count.
PfrResult pfr_search(const PfrChunk& chunk, const PfrSearch& search, int threads);

// Writes candidate `index` (1-based) of a chunk: eps[0..d).
void pfr_candidate(uint64_t seed, uint64_t cand_stream, uint64_t index, std::size_t d, float* eps);

// The search screens candidates with approximate normals before scoring the
// few that can still win exactly (pfr.cpp). For tests: the approximations of
// normal_f32(w[i]) and the bound on |approximation - normal_f32(w)| they obey.
void pfr_screen_normals(const uint32_t* w, float* eps, std::size_t m);
double pfr_screen_error_bound();

// The search without screening (every candidate scored exactly), serial: the
// reference the screened search must reproduce index for index (tests).
PfrResult pfr_search_unscreened(const PfrChunk& chunk, const PfrSearch& search);

}  // namespace pfr
}  // namespace chansim

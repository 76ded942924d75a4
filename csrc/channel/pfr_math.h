// Per-candidate PFR math shared by the CPU search and the CUDA kernels.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/hd.h"
#include "common/transforms.h"

namespace chansim {
namespace pfr {

// Arrival increment of candidate n (1-based): Exp(1) draws e for Poisson PFR,
// the Rényi representation e·K/(K−n+1) of sorted exponentials for ORC.
CHANSIM_HD double pfr_increment(int ordered, double e, uint64_t n, uint64_t k) {
  if (!ordered) return e;
  return e * (static_cast<double>(k) / static_cast<double>(k - n + 1));
}

// log r(eps) = c0 + Σ lin_i eps_i (+ Σ quad_i eps_i²), accumulated in float64 in
// coordinate order. `eps(i)` yields the float32 candidate normal of coordinate i.
template <class Eps>
CHANSIM_HD double pfr_log_ratio(const double* lin, const double* quad, double c0, std::size_t d, Eps eps) {
  double acc = 0.0;
  if (quad) {
    for (std::size_t i = 0; i < d; ++i) {
      const double x = eps(i);
      acc += lin[i] * x + quad[i] * (x * x);
    }
  } else {
    for (std::size_t i = 0; i < d; ++i) acc += lin[i] * static_cast<double>(eps(i));
  }
  return c0 + acc;
}

// The PFR score to minimise: log T_n − log r(Z_n).
CHANSIM_HD double pfr_score(double t, double log_r) { return det_log(t) - log_r; }

}  // namespace pfr
}  // namespace chansim

#include "validate.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "common/parallel.h"

namespace chansim {
namespace rans {
namespace {

// Lowest i in [0, n) with bad(i), or n; scans in parallel, >= grain per thread.
template <class Bad>
std::size_t first_bad(std::size_t n, std::size_t grain, const Bad& bad) {
  std::atomic<std::size_t> first{n};
  parallel_for(n, grain, 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e && i < first.load(std::memory_order_relaxed); ++i) {
      if (bad(i)) {
        std::size_t cur = first.load();
        while (i < cur && !first.compare_exchange_weak(cur, i)) {
        }
        return;
      }
    }
  });
  return first.load();
}

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string where(const RealArg& a, std::size_t i, const char* name) {
  return a.kind == RealArg::kScalar ? std::string(name) : std::string(name) + "[" + std::to_string(i) + "]";
}

[[noreturn]] void bad_value(const std::string& what, double v, const char* rule) {
  throw std::invalid_argument(what + " = " + num(v) + ": " + rule);
}

// Bad elements among the model parameters of symbols [i, i + m) (m <= kChunk):
// counted with comparisons the compiler vectorises (NaN fails every one).
constexpr std::size_t kChunk = 1024;
std::size_t count_bad_params(const ParamArgs& a, std::size_t i, std::size_t m) {
  double mean[kChunk], scale[kChunk];
  a.mean.load(i, m, mean);
  a.scale.load(i, m, scale);
  std::size_t bad = 0;
  if (a.dithered) {
    double w[kChunk], u[kChunk];
    a.width.load(i, m, w);
    a.offset.load(i, m, u);
    for (std::size_t j = 0; j < m; ++j) {
      bad += !(std::fabs(w[j]) <= DBL_MAX);
      bad += !(w[j] > 0.0);
      bad += !(std::fabs(mean[j]) <= DBL_MAX);
      bad += !(std::fabs(u[j]) <= DBL_MAX);
      mean[j] = mean[j] / w[j] + u[j];
      scale[j] = scale[j] / w[j];
    }
  }
  for (std::size_t j = 0; j < m; ++j) {
    bad += !(std::fabs(mean[j]) <= DBL_MAX);
    bad += !(std::fabs(scale[j]) <= DBL_MAX);
    bad += !(scale[j] > 0.0);
  }
  return bad;
}

}  // namespace

void check_args(std::size_t n, const ParamArgs& a) {
  const std::size_t chunks = (n + kChunk - 1) / kChunk;
  const std::size_t c = first_bad(chunks, 16, [&](std::size_t c) {
    return count_bad_params(a, c * kChunk, std::min(kChunk, n - c * kChunk)) > 0;
  });
  if (c == chunks) return;
  std::size_t i = c * kChunk;
  while (count_bad_params(a, i, 1) == 0) ++i;
  const double m0 = a.mean.at(i), s0 = a.scale.at(i);
  if (!std::isfinite(m0)) bad_value(where(a.mean, i, "means"), m0, "means must be finite");
  if (!(std::isfinite(s0) && s0 > 0.0)) bad_value(where(a.scale, i, "scales"), s0, "scales must be finite and > 0");
  const double w = a.width.at(i), u = a.offset.at(i);
  if (!(std::isfinite(w) && w > 0.0)) bad_value(where(a.width, i, "width"), w, "width must be finite and > 0");
  if (!std::isfinite(u)) bad_value(where(a.offset, i, "offset"), u, "offset must be finite");
  // Finite inputs whose reparameterisation overflows or underflows to 0.
  throw std::invalid_argument("element " + std::to_string(i) + ": means / width + offset or scales / width (" +
                              num(m0 / w + u) + ", " + num(s0 / w) + ") is not finite and positive");
}

void check_args(std::size_t n, const TableArgs& a, int precision) {
  const std::size_t kmax = std::size_t(1) << (precision - 1);
  if (a.K == 0) throw std::invalid_argument("probabilities: the table needs at least one entry");
  if (a.K > kmax)
    throw std::invalid_argument("probabilities: " + std::to_string(a.K) + " entries exceed 2**(precision - 1) = " +
                                std::to_string(kmax) + " at precision " + std::to_string(precision));
  const std::size_t rows = a.shared ? 1 : n;  // a shared table is checked even for no symbols
  const std::size_t r = first_bad(rows, 64, [&](std::size_t r) {
    double s = 0.0;
    for (std::size_t j = 0; j < a.K; ++j) {
      const double p = a.probs.at(r * a.K + j);
      if (!(std::isfinite(p) && p >= 0.0)) return true;
      s += p;
    }
    return !(std::fabs(s - 1.0) <= kTableSumTolerance);
  });
  if (r == rows) return;
  double s = 0.0;
  for (std::size_t j = 0; j < a.K; ++j) {
    const double p = a.probs.at(r * a.K + j);
    if (!(std::isfinite(p) && p >= 0.0)) {
      const std::string at = a.shared ? "probabilities[" + std::to_string(j) + "]"
                                      : "probabilities[" + std::to_string(r) + ", " + std::to_string(j) + "]";
      bad_value(at, p, "probabilities must be finite and >= 0");
    }
    s += p;
  }
  const std::string at = a.shared ? "probabilities" : "probabilities[" + std::to_string(r) + "]";
  bad_value("sum of " + at, s, "probabilities must sum to 1 (within 1e-3)");
}

void check_args(std::size_t n, const ZipfArgs& a) {
  if (a.n_max < 1 || a.n_max > 2147483647)
    throw std::invalid_argument("n_max = " + std::to_string(a.n_max) + ": must be in [1, 2**31 - 1]");
  const std::size_t i = first_bad(n, std::size_t(1) << 16, [&](std::size_t i) {
    const double l = a.lam.at(i);
    return !(l > 0.0 && l <= kMaxLambda);
  });
  if (i < n) bad_value(where(a.lam, i, "lam"), a.lam.at(i), "lam must be in (0, 1000]");
}

void check_args(std::size_t n, const UniformArgs& a) {
  const std::size_t i = first_bad(n, std::size_t(1) << 16, [&](std::size_t i) { return a.low.at(i) > a.high.at(i); });
  if (i < n)
    throw std::invalid_argument("low > high at element " + std::to_string(i) + " (" + std::to_string(a.low.at(i)) +
                                " > " + std::to_string(a.high.at(i)) + ")");
}

}  // namespace rans
}  // namespace chansim

#include "channel/pfr.h"
#include "channel/pfr_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "common/prng.h"
#include "common/transforms.h"

namespace chansim {
namespace {

constexpr std::size_t kBatchWords = 4096;  // normals generated per batch
// Arrival times must be independent of the candidates: a different Philox key.
constexpr uint64_t kArrivalKey = 0x9E3779B97F4A7C15ull;

struct Best {
  double score = std::numeric_limits<double>::infinity();
  uint64_t index = 0;
  void offer(double s, uint64_t n) {
    if (s < score || (s == score && n < index)) {
      score = s;
      index = n;
    }
  }
};

// Scores candidates [first, last] (1-based) starting from T_{first-1} = t and
// the best of all earlier candidates; returns as soon as the stopping rule
// proves that no later candidate can win.
Best score_range(const PfrChunk& c, const PfrSearch& s, uint64_t first, uint64_t last, double t, Best best,
                 uint64_t* scored, bool* stopped, double* t_out) {
  const std::size_t d = c.d;
  const std::size_t per = std::max<std::size_t>(1, kBatchWords / std::max<std::size_t>(d, 1));
  std::vector<float> eps(per * d);
  std::vector<double> expo(per);
  uint64_t n = first;
  *scored = 0;
  *stopped = false;
  while (n <= last) {
    const std::size_t m = static_cast<std::size_t>(std::min<uint64_t>(per, last - n + 1));
    fill_f32_serial(Variate::Normal, s.seed, c.cand_stream, (n - 1) * d, eps.data(), m * d);
    fill_f64_serial(Variate::Exponential, s.seed ^ kArrivalKey, c.arrival_stream, n - 1, expo.data(), m);
    for (std::size_t j = 0; j < m; ++j, ++n) {
      const float* e = eps.data() + j * d;
      const double log_r = pfr_log_ratio(c.lin, c.quad, c.c0, d, [e](std::size_t i) { return e[i]; });
      t += pfr_increment(static_cast<int>(s.arrivals), expo[j], n, s.max_candidates);
      const double log_t = det_log(t);
      best.offer(log_t - log_r, n);
      ++*scored;
      if (log_t - s.log_r_bound >= best.score) {
        *stopped = true;
        *t_out = t;
        return best;
      }
    }
  }
  *t_out = t;
  return best;
}

// The serial running sum T over candidates [first, last], recording the value
// before each of `parts` equal parts; returns T_last. Same additions in the same
// order as score_range, so every candidate sees bit-identical arrival times.
double arrival_prefix(const PfrChunk& c, const PfrSearch& s, uint64_t first, uint64_t last, double t,
                      const std::vector<uint64_t>& part_lo, std::vector<double>* t_before) {
  std::vector<double> expo(4096);
  std::size_t p = 0;
  for (uint64_t n = first; n <= last;) {
    const std::size_t m = static_cast<std::size_t>(std::min<uint64_t>(expo.size(), last - n + 1));
    fill_f64_serial(Variate::Exponential, s.seed ^ kArrivalKey, c.arrival_stream, n - 1, expo.data(), m);
    for (std::size_t j = 0; j < m; ++j, ++n) {
      while (p < part_lo.size() && part_lo[p] == n) (*t_before)[p++] = t;
      t += pfr_increment(static_cast<int>(s.arrivals), expo[j], n, s.max_candidates);
    }
  }
  return t;
}

}  // namespace

void pfr_candidate(uint64_t seed, uint64_t cand_stream, uint64_t index, std::size_t d, float* eps) {
  fill_f32_serial(Variate::Normal, seed, cand_stream, (index - 1) * d, eps, d);
}

PfrResult pfr_search(const PfrChunk& c, const PfrSearch& s, int threads) {
  const uint64_t k = std::max<uint64_t>(1, s.max_candidates);
  PfrResult r{0, 0, false};
  Best best;
  double t = 0.0;  // T of the last candidate of the previous round
  uint64_t next = 1;
  // Rounds grow geometrically: small searches stay serial and cheap, long ones
  // split each round over the threads. The chosen index is the global argmin
  // (ties to the smaller index) whatever the split; only `examined` varies.
  uint64_t round = std::max<uint64_t>(64, 8192 / std::max<std::size_t>(c.d, 1));
  while (next <= k) {
    const uint64_t last = std::min<uint64_t>(k, next + round - 1);
    const uint64_t count = last - next + 1;
    const int parts = (threads > 1 && count * std::max<std::size_t>(c.d, 1) >= (1u << 16)) ? threads : 1;
    if (parts == 1) {
      uint64_t scored;
      bool stopped;
      double t_end;
      best = score_range(c, s, next, last, t, best, &scored, &stopped, &t_end);
      r.examined += scored;
      t = t_end;
      if (stopped) {
        r.stopped = true;
        break;
      }
    } else {
      std::vector<uint64_t> lo(parts), hi(parts), scored(parts);
      std::vector<double> t_before(parts);
      std::vector<Best> bests(parts);
      std::vector<char> stopped(parts);
      for (int p = 0; p < parts; ++p) {
        lo[p] = next + count * p / parts;
        hi[p] = next + count * (p + 1) / parts - 1;
      }
      const double t_end = arrival_prefix(c, s, next, last, t, lo, &t_before);
      parallel_for(static_cast<std::size_t>(parts), 1, 1, [&](std::size_t b, std::size_t e) {
        for (std::size_t p = b; p < e; ++p) {
          bool st;
          double unused_t;
          bests[p] = score_range(c, s, lo[p], hi[p], t_before[p], best, &scored[p], &st, &unused_t);
          stopped[p] = st;
        }
      });
      for (int p = 0; p < parts; ++p) {
        best.offer(bests[p].score, bests[p].index);
        r.examined += scored[p];
      }
      t = t_end;
      if (det_log(t) - s.log_r_bound >= best.score) {
        r.stopped = true;
        break;
      }
    }
    next = last + 1;
    round = std::min<uint64_t>(round * 2, uint64_t(1) << 22);
  }
  r.index = best.index;
  return r;
}

}  // namespace chansim

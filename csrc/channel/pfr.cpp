#include "channel/pfr.h"
#include "channel/pfr_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "channel/pfr_screen.h"
#include "common/bits.h"
#include "common/isa.h"
#include "common/parallel.h"
#include "common/prng.h"
#include "common/transforms.h"

namespace chansim {
namespace pfr {
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

// ---- screening with bounded approximate normals --------------------------------
// Generating the exact candidate normals (float64 AS 241 per coordinate) is most
// of the search's cost, yet nearly every candidate loses by a wide margin. So
// each candidate is first scored with cheap normals eps~ that are provably
// within `err` of the exact ones; only a candidate whose approximate score,
// less the worst-case error, could beat (or tie) the best so far is scored
// exactly, from its exact normals, with the normative expression. Skipped
// candidates would not have changed the best, so the chosen index, the scores
// and the stopping point are those of scoring every candidate exactly.
//
// eps~(w) is the chord of eps(w) = normal_f32(w) over bins of words: 2048 bins
// of the top 11 bits in the centre and, in the tails, bins of 2^13 words. In a
// bin spanning h in probability with far end z_f, the chord misses Phi^-1 by at
// most h^2/8 max|(Phi^-1)''| = h^2/8 z_f / phi(z_f)^2 (|z| / phi(z)^2 grows
// with |z|); the float table, the float evaluation and the float32 rounding of
// eps add < 2^-21 (|z_f| + 1). Bins where this exceeds kChordErr (only the
// outermost tail bins, p < ~1e-6) get the exact normal_f32.
constexpr int kBins = 2048;
constexpr int kBinShift = 21;
constexpr int kFineShift = 13;
constexpr double kChordErr = 2e-4;

struct Chord {
  float a = 0.0f, b = 0.0f;
  bool ok = false;
};

struct ChordTable {
  alignas(64) float coarse_ab[2 * kBins];  // (a, b) per bin; NaN where the coarse chord is not ok
  std::vector<Chord> fine;  // tail bins: words >> kFineShift, for coarse bins that are not ok
  double err = 0.0;         // max |eps~ - eps| over ok bins
  double zmax = 0.0;        // max |eps~|, |eps| there (for the quadratic term)

  Chord make(uint32_t w0, uint32_t w1) {
    Chord c;
    const double z0 = ndtri(uniform_f64_from32(w0)), z1 = ndtri(uniform_f64_from32(w1));
    c.a = static_cast<float>(z0);
    c.b = static_cast<float>((z1 - z0) / static_cast<double>(w1 - w0));
    const double h = std::ldexp(static_cast<double>(w1 - w0), -32);
    const double zf = std::fmax(std::fabs(z0), std::fabs(z1));
    const double phi = 0.3989422804014327 * std::exp(-0.5 * zf * zf);
    // 1 % margin on the libm density; the rounding terms bound float error.
    const double e = 1.01 * h * h / 8.0 * zf / (phi * phi) + std::ldexp(zf + 1.0, -21);
    c.ok = e <= kChordErr;
    if (c.ok) {
      err = std::fmax(err, e);
      zmax = std::fmax(zmax, zf + e);
    }
    return c;
  }

  ChordTable() : fine(std::size_t{1} << (32 - kFineShift)) {
    for (uint32_t j = 0; j < static_cast<uint32_t>(kBins); ++j) {
      const uint32_t w0 = j << kBinShift;
      const Chord c = make(w0, w0 + ((1u << kBinShift) - 1));
      coarse_ab[2 * j] = c.ok ? c.a : std::numeric_limits<float>::quiet_NaN();
      coarse_ab[2 * j + 1] = c.ok ? c.b : std::numeric_limits<float>::quiet_NaN();
      if (c.ok) continue;
      for (uint32_t k = w0 >> kFineShift; k < (w0 >> kFineShift) + (1u << (kBinShift - kFineShift)); ++k)
        fine[k] = make(k << kFineShift, (k << kFineShift) + ((1u << kFineShift) - 1));
    }
  }
};

const ChordTable& chord_table() {
  static const ChordTable t;
  return t;
}

screen::ChordPass chord_pass() {
#if defined(CHANSIM_HAVE_AVX2_TU)
  static const screen::ChordPass f = use_avx2() ? screen::avx2::chord_pass : screen::baseline::chord_pass;
#else
  static const screen::ChordPass f = screen::baseline::chord_pass;
#endif
  return f;
}

// eps~ for m words: the coarse chord everywhere (NaN chords mark the bins it
// does not cover), then the ~1.5 % tail words from the fine table or exactly.
void approx_normals(const ChordTable& tb, const uint32_t* w, float* eps, std::size_t m) {
  uint8_t flag[kBatchWords / 8];
  for (std::size_t base = 0; base < m; base += kBatchWords) {
    const std::size_t n = std::min(kBatchWords, m - base);
    chord_pass()(tb.coarse_ab, w + base, eps + base, flag, n);
    for (std::size_t g = 0; g < (n + 7) / 8; ++g) {
      for (unsigned bits = flag[g]; bits; bits &= bits - 1) {
        const std::size_t i = base + 8 * g + static_cast<std::size_t>(ctz32(bits));
        const Chord& f = tb.fine[w[i] >> kFineShift];
        eps[i] = f.ok ? f.a + f.b * static_cast<float>(static_cast<int32_t>(w[i] & ((1u << kFineShift) - 1)))
                      : normal_f32(w[i]);
      }
    }
  }
}

screen::ApproxScores approx_scores() {
#if defined(CHANSIM_HAVE_AVX2_TU)
  static const screen::ApproxScores f =
      use_avx2() ? screen::avx2::approx_scores : screen::baseline::approx_scores;
#else
  static const screen::ApproxScores f = screen::baseline::approx_scores;
#endif
  return f;
}

// lo <= det_log(t) <= hi for a positive normal t from its bits alone:
// t = 2^e (1 + f) and f <= log2(1 + f) <= f + 0.0861 (concave, equal at 0 and
// 1, the gap peaking at 0.08607 at f = 1/ln 2 - 1); the relative widening
// covers the rounding here and det_log's < 1 ulp.
void log_enclosure(double t, double* lo, double* hi) {
  const uint64_t b = detail::bits_of(t);
  const double e = static_cast<double>(static_cast<int64_t>(b >> 52) - 1023);
  const double f = exact_double_u52(b & 0xFFFFFFFFFFFFFull) * 2.220446049250313080847263336181640625e-16;
  const double l = 0.6931471805599453 * (e + f), h = 0.6931471805599453 * ((e + f) + 0.08608);
  *lo = l - 1e-14 * (std::fabs(l) + 1.0);
  *hi = h + 1e-14 * (std::fabs(h) + 1.0);
}

// Worst case |approximate log r - exact log r| of any candidate of the chunk.
// The approximation is c0 + Σ fl32(lin_i) eps~_i (+ fl32(quad_i) eps~_i²) summed
// in float32 in any order (pfr_screen approx_scores); the exact score is the
// float64 sum of pfr_log_ratio. With |eps|, |eps~| < 6.5 for every 32-bit word:
//  - the normals' error through lin and quad: err Σ (|l| + |q| (2 zmax + err));
//  - float32: rounding the coefficients (2^-24 each), the products (two per
//    quadratic term) and any summation order of d terms (γ_{d+3} < (d + 4) 2^-24
//    for d < 2^20) is at most (d + 4) 2^-23 of mag = Σ 6.5 |l| + 42.25 |q|
//    (2^-23, not 2^-24, also covers the second-order terms);
//  - the float64 sum of the exact score and the final additions: (2d + 8) 2^-51.
double screening_margin(const PfrChunk& c, const ChordTable& tb) {
  double mag = 0.0, sens = 0.0;
  for (std::size_t i = 0; i < c.d; ++i) {
    const double l = std::fabs(c.lin[i]), q = c.quad ? std::fabs(c.quad[i]) : 0.0;
    sens += l + q * (2.0 * tb.zmax + tb.err);
    mag += 6.5 * l + 42.25 * q;
  }
  const double d = static_cast<double>(c.d);
  return (tb.err * sens + std::ldexp((d + 4.0) * mag, -23) +
          std::ldexp((2.0 * d + 8.0) * (mag + std::fabs(c.c0)), -51)) * (1.0 + 1e-9);
}

struct ScoreScratch {
  std::vector<float> lin, quad, eps, exact;
  std::vector<uint32_t> words;
  std::vector<double> expo, approx, tt, lo, hi;
  void reserve(std::size_t d, std::size_t per, bool with_quad) {
    const auto grow = [](auto& v, std::size_t n) {
      if (v.size() < n) v.resize(n);
    };
    grow(lin, d);
    if (with_quad) grow(quad, d);
    grow(exact, d);
    grow(words, per * d);
    grow(eps, per * d);
    for (auto* v : {&expo, &approx, &tt, &lo, &hi}) grow(*v, per);
  }
};

// Scores candidates [first, last] (1-based) starting from T_{first-1} = t and
// the best of all earlier candidates; returns as soon as the stopping rule
// proves that no later candidate can win.
Best score_range(const PfrChunk& c, const PfrSearch& s, uint64_t first, uint64_t last, double t, Best best,
                 uint64_t* scored, bool* stopped, double* t_out, bool screen = true) {
  const std::size_t d = c.d;
  const std::size_t per = static_cast<std::size_t>(std::min<uint64_t>(
      last - first + 1, std::max<std::size_t>(1, kBatchWords / std::max<std::size_t>(d, 1))));
  const ChordTable& tb = chord_table();
  const double margin = screening_margin(c, tb);
  // Per-thread scratch that only grows: a search of many small chunks must not
  // pay nine allocations per chunk.
  thread_local ScoreScratch sc;
  sc.reserve(d, per, c.quad != nullptr);
  float* const lin = sc.lin.data();
  float* const quad = sc.quad.data();
  // Coefficients beyond float32's comfortable range could overflow the float
  // scores to ±inf, and an infinite approximate score would skip a candidate
  // wrongly: such chunks are scored exactly, every candidate.
  double cmax = 0.0;
  for (std::size_t i = 0; i < d; ++i) {
    lin[i] = static_cast<float>(c.lin[i]);
    cmax = std::fmax(cmax, std::fabs(c.lin[i]));
  }
  if (c.quad)
    for (std::size_t i = 0; i < d; ++i) {
      quad[i] = static_cast<float>(c.quad[i]);
      cmax = std::fmax(cmax, std::fabs(c.quad[i]));
    }
  screen = screen && cmax < 1e30 && d < (std::size_t{1} << 24);
  uint32_t* const words = sc.words.data();
  float* const eps = sc.eps.data();
  float* const exact = sc.exact.data();
  double *const expo = sc.expo.data(), *const approx = sc.approx.data(), *const tt = sc.tt.data();
  double *const lo = sc.lo.data(), *const hi = sc.hi.data();
  uint64_t n = first;
  *scored = 0;
  *stopped = false;
  while (n <= last) {
    const std::size_t m = static_cast<std::size_t>(std::min<uint64_t>(per, last - n + 1));
    if (screen) {  // unscreened, every candidate is scored exactly below
      prng::fill_words_serial(s.seed, c.cand_stream, (n - 1) * d, words, m * d);
      approx_normals(tb, words, eps, m * d);
      approx_scores()(lin, c.quad ? quad : nullptr, eps, d, m, approx);
    }
    prng::fill_f64_serial(prng::Variate::Exponential, s.seed ^ kArrivalKey, c.arrival_stream, n - 1, expo, m);
    // The batch's arrival times (the same additions in the same order as
    // arrival_prefix) and their cheap log enclosures, so the candidate loop
    // below only compares; det_log(t) only where a decision needs it.
    for (std::size_t j = 0; j < m; ++j)
      tt[j] = t += pfr_increment(static_cast<int>(s.arrivals), expo[j], n + j, s.max_candidates);
    for (std::size_t j = 0; j < m; ++j) log_enclosure(tt[j], &lo[j], &hi[j]);
    for (std::size_t j = 0; j < m; ++j, ++n) {
      double log_t = std::numeric_limits<double>::quiet_NaN();
      if (!screen || !((lo[j] - (c.c0 + approx[j])) - margin > best.score)) {
        log_t = det_log(tt[j]);
        // The decoder's own generator (pfr_candidate), so the scored normals
        // are the ones it regenerates.
        pfr_candidate(s.seed, c.cand_stream, n, d, exact);
        const float* x = exact;
        const double log_r = pfr_log_ratio(c.lin, c.quad, c.c0, d, [x](std::size_t i) { return x[i]; });
        best.offer(log_t - log_r, n);
      }
      ++*scored;
      if (!(hi[j] - s.log_r_bound >= best.score)) continue;  // cannot stop yet
      if (log_t != log_t) log_t = det_log(tt[j]);
      if (log_t - s.log_r_bound >= best.score) {
        *stopped = true;
        *t_out = tt[j];
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
    prng::fill_f64_serial(prng::Variate::Exponential, s.seed ^ kArrivalKey, c.arrival_stream, n - 1, expo.data(), m);
    for (std::size_t j = 0; j < m; ++j, ++n) {
      while (p < part_lo.size() && part_lo[p] == n) (*t_before)[p++] = t;
      t += pfr_increment(static_cast<int>(s.arrivals), expo[j], n, s.max_candidates);
    }
  }
  return t;
}

}  // namespace

void pfr_candidate(uint64_t seed, uint64_t cand_stream, uint64_t index, std::size_t d, float* eps) {
  prng::fill_f32_serial(prng::Variate::Normal, seed, cand_stream, (index - 1) * d, eps, d);
}

void pfr_screen_normals(const uint32_t* w, float* eps, std::size_t m) { approx_normals(chord_table(), w, eps, m); }
double pfr_screen_error_bound() { return chord_table().err; }

PfrResult pfr_search_unscreened(const PfrChunk& c, const PfrSearch& s) {
  PfrResult r{0, 0, false};
  double t_end;
  const Best best = score_range(c, s, 1, std::max<uint64_t>(1, s.max_candidates), 0.0, Best{}, &r.examined,
                                &r.stopped, &t_end, false);
  r.index = best.index;
  return r;
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

}  // namespace pfr
}  // namespace chansim

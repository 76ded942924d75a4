// Model families: exact integer CDFs (every symbol frequency >= 1, totals
// 2^p, escape last), closeness to the continuous model, batch kernels (AVX2
// and baseline) bit-identical to the scalar reference, decoder lookups the
// exact inverse of encoder steps, and end-to-end round trips through
// Encoder / Decoder with escapes, dithered grids and mixed calls.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "check.h"
#include "common/isa.h"
#include "common/parallel.h"
#include "entropy/coder.h"
#include "entropy/param_family.h"
#include "entropy/param_kernels.h"
#include "entropy/table_family.h"
#include "entropy/uniform_family.h"
#include "entropy/zipf_family.h"

using namespace chansim;
using namespace chansim::rans;

namespace {

std::mt19937_64 g(2024);
double unif(double a, double b) { return std::uniform_real_distribution<double>(a, b)(g); }

// A random (mean, scale) pair spanning the supported range, biased to extremes.
void random_param(double* mean, double* scale) {
  switch (g() % 4) {
    case 0: *mean = unif(-10, 10), *scale = std::exp(unif(std::log(0.05), std::log(50.0))); break;
    case 1: *mean = unif(-1e6, 1e6), *scale = std::exp(unif(std::log(1e-3), std::log(1e4))); break;
    case 2: *mean = unif(-3e9, 3e9), *scale = std::exp(unif(std::log(1e-8), std::log(1e10))); break;
    default: *mean = std::ldexp(unif(-1, 1), static_cast<int>(g() % 40)), *scale = std::ldexp(1.0, static_cast<int>(g() % 60) - 30);
  }
}

template <Shape S>
double cdf(double x) {
  // The continuous CDF, from libm, for the closeness check.
  if (S == Shape::kGaussian) return 0.5 * std::erfc(-x / std::sqrt(2.0));
  if (S == Shape::kLogistic) return 1.0 / (1.0 + std::exp(-x));
  return x < 0 ? 0.5 * std::exp(x) : 1.0 - 0.5 * std::exp(-x);
}

template <Shape S>
void check_param_family(const char* name) {
  const int shape = static_cast<int>(S);
  int bad_total = 0, bad_mono = 0, bad_kernel = 0, bad_lookup = 0, bad_close = 0;
  for (int p : {16, 24, 30}) {
    const uint32_t M = uint32_t(1) << p;
    for (int trial = 0; trial < 300; ++trial) {
      double mean, scale;
      random_param(&mean, &scale);
      const ParamCanon c = param_canon<S>(mean, scale, p);
      // Whole windows up to 2^16 symbols: nondecreasing G, frequencies >= 1,
      // escape at the top with frequency >= 1.
      const double R = c.hi - c.lo + 1;
      if (R <= 65536) {
        uint32_t prev = param_cum<S>(c, c.lo);
        bad_mono += prev != 0;
        for (double k = c.lo + 1; k <= c.hi + 1; ++k) {
          const uint32_t cur = param_cum<S>(c, k);
          bad_mono += cur <= prev;
          // Within 2 leaks and 2^-p (plus 1e-9 relative) of the exact mass.
          if (R < 2000) {
            const double lo_x = ((k - 1) - 0.5 - c.mu) / c.sigma, hi_x = (k - 0.5 - c.mu) / c.sigma;
            const double exact = cdf<S>(hi_x) - cdf<S>(lo_x);
            const double got = static_cast<double>(cur - prev) / M;
            bad_close += std::fabs(got - exact) > (R + 3.0) / M + 1e-9 * exact;
          }
          prev = cur;
        }
        bad_total += param_escape_start(c) != prev || prev >= M;
      }
      // Batch kernels == scalar reference, for symbols in and around the window.
      const int n = 64;
      std::vector<double> means(n, mean), scales(n, scale);
      std::vector<int32_t> sym(n);
      for (int j = 0; j < n; ++j) {
        const double centre = std::fmin(std::fmax(c.mu, -2147483000.0), 2147483000.0);
        double v = centre + (static_cast<double>(g() % 2001) - 1000.0) * (j % 4 == 0 ? 1.0 : c.sigma / 300.0);
        v = std::fmin(std::fmax(v, -2147483648.0), 2147483647.0);
        sym[j] = static_cast<int32_t>(v);
      }
      std::vector<const ParamKernels*> sets = {&kernels::param_baseline()};
#if defined(CHANSIM_HAVE_AVX2_TU)
      if (cpu_has_avx2()) sets.push_back(&kernels::param_avx2());
#endif
      for (const ParamKernels* ks : sets) {
        std::vector<uint64_t> step(n);
        std::vector<uint8_t> raw(n);
        ks->encode[shape](means.data(), scales.data(), sym.data(), n, p, step.data(), raw.data());
        std::vector<uint32_t> slots(n);
        for (int j = 0; j < n; ++j) {
          bool esc;
          const uint64_t want = param_step<S>(c, sym[j], p, &esc);
          bad_kernel += step[j] != want || raw[j] != esc;
          // A slot inside the symbol's interval decodes back to it.
          const uint32_t start = static_cast<uint32_t>(want), freq = static_cast<uint32_t>(want >> 32);
          slots[j] = start + static_cast<uint32_t>(g() % freq);
        }
        std::vector<Lookup> out(n);
        ks->lookup[shape](means.data(), scales.data(), slots.data(), n, p, out.data());
        for (int j = 0; j < n; ++j) {
          bool esc;
          const uint64_t want = param_step<S>(c, sym[j], p, &esc);
          const Lookup ref = param_lookup<S>(c, slots[j], p);
          bad_lookup += out[j].start != ref.start || out[j].freq != ref.freq || out[j].value != ref.value ||
                        out[j].kind != ref.kind;
          bad_lookup += out[j].start != static_cast<uint32_t>(want);
          bad_lookup += esc ? out[j].kind != kEscape : out[j].value != sym[j];
        }
      }
    }
  }
  std::printf("%s: total %d, monotone %d, closeness %d, kernel %d, lookup %d failures\n", name, bad_total, bad_mono,
              bad_close, bad_kernel, bad_lookup);
  CHECK(bad_total == 0);
  CHECK(bad_mono == 0);
  CHECK(bad_close == 0);
  CHECK(bad_kernel == 0);
  CHECK(bad_lookup == 0);
}

// Decodes one Zipf index from a slot inside its first interval: first lookup,
// then (classes) the sub-band from a slot inside the second interval.
int32_t zipf_decode(const ZipfCanon& c, uint64_t step, const Payload& pay, int p, int* bad) {
  const uint32_t slot = static_cast<uint32_t>(step) + static_cast<uint32_t>(g() % (step >> 32));
  Lookup r = zipf_lookup(c, slot, p);
  *bad += r.start != static_cast<uint32_t>(step) || r.freq != static_cast<uint32_t>(step >> 32);
  if (r.kind == kNext) {
    *bad += pay.next_freq == 0;
    if (pay.next_freq == 0) return 0;
    r = zipf_next(c, r.value, pay.next_start + static_cast<uint32_t>(g() % pay.next_freq), p);
    *bad += r.start != pay.next_start || r.freq != pay.next_freq;
  }
  *bad += r.raw_bits != pay.bits;
  if (r.kind == kEscape) return static_cast<int32_t>(pay.value);
  return static_cast<int32_t>(static_cast<uint32_t>(r.value) + (r.kind == kAddRaw ? pay.value : 0));
}

void check_zipf() {
  int bad = 0;
  for (int p : {16, 24, 30}) {
    const uint32_t M = uint32_t(1) << p;
    for (double lam : {0.2, 0.999, 1.0, 1.0000001, 1.3, 2.5, 7.0, 60.0, 1000.0}) {
      for (double N : {1.0, 2.0, 8.0, 9.0, 1000.0, 4096.0, 4097.0, 1e6, 2147483647.0}) {
        const ZipfCanon c = zipf_canon(lam, N, p);
        // First-step CDF strictly increasing, escape last.
        const int64_t top = c.E < 0 ? static_cast<int64_t>(N) + 1 : c.E + 1;
        uint32_t prev = zipf_cum(c, c.E < 0 ? 1.0 : 0.0);
        bad += prev != 0;
        for (int64_t k = (c.E < 0 ? 2 : 1); k <= top; k = k < 300 ? k + 1 : k * 13 / 10) {
          const uint32_t cur = zipf_cum(c, static_cast<double>(k)), before = zipf_cum(c, static_cast<double>(k - 1));
          bad += cur <= before;
          prev = cur;
        }
        bad += zipf_cum(c, static_cast<double>(top)) != M - 1;
        // Sub-band CDFs strictly increasing for every class.
        for (int e = 1; e <= c.E; ++e) {
          const ZipfClass z = zipf_class(c, e);
          for (uint32_t h = 0; h < z.H; h = h < 64 ? h + 1 : h * 5 / 4 + 1)
            bad += zipf_sub_cum(c, z, h + 1, p) <= zipf_sub_cum(c, z, h, p);
          bad += zipf_sub_cum(c, z, z.H, p) != M;
        }
        // Encoder steps and decoder lookups agree, inside and outside [1, N].
        for (int t = 0; t < 300; ++t) {
          int32_t v;
          if (t < 100) v = static_cast<int32_t>(1 + g() % 20);
          else if (t < 280) v = static_cast<int32_t>(1 + g() % static_cast<uint64_t>(N));
          else v = static_cast<int32_t>(g());
          Payload pay{0};
          const uint64_t st = zipf_step(c, v, p, &pay);
          bad += zipf_decode(c, st, pay, p, &bad) != v;
        }
        // P(1) / P(2) = 2^lam where both are resolvable at this precision.
        if (N >= 2 && lam <= 7) {
          Payload p1{0}, p2{0};
          const double f1 = static_cast<double>(zipf_step(c, 1, p, &p1) >> 32);
          const uint64_t s2 = zipf_step(c, 2, p, &p2);
          const double f2 = static_cast<double>(s2 >> 32) * (p2.next_freq ? p2.next_freq / double(M) : 1.0);
          if (f2 > 1000) bad += std::fabs(std::log2(f1 / f2) - lam) > 1e-2;
        }
      }
    }
  }
  std::printf("zipf: %d failures\n", bad);
  CHECK(bad == 0);
}

void check_tables_and_uniform() {
  int bad = 0;
  for (int p : {16, 24}) {
    // Categorical: random and degenerate rows; steps == rows, lookups invert.
    for (int trial = 0; trial < 50; ++trial) {
      const std::size_t K = 1 + g() % 300;
      std::vector<double> probs(K);
      double s = 0;
      for (auto& v : probs) s += v = (g() % 3 == 0) ? 0.0 : unif(0, 1);
      if (s == 0) probs[0] = s = 1;
      for (auto& v : probs) v /= s;
      const RealArg a = RealArg::f64(probs.data());
      const CategoricalTable table(a, K, p);
      std::vector<uint32_t> cum(K + 1);
      categorical_cum(a, 0, K, p, cum.data());
      for (std::size_t k = 0; k < K; ++k) bad += cum[k + 1] <= cum[k];
      bad += cum[K] != (uint32_t(1) << p) - 1;
      for (int32_t v = -2; v < static_cast<int32_t>(K) + 2; ++v) {
        bool e1, e2;
        const uint64_t s1 = table.step(v, &e1), s2 = categorical_step_row(a, 0, K, v, p, &e2);
        bad += s1 != s2 || e1 != e2;
        const uint32_t slot = static_cast<uint32_t>(s1) + static_cast<uint32_t>(g() % (s1 >> 32));
        const Lookup r = table.lookup(slot);
        bad += r.start != static_cast<uint32_t>(s1) || (e1 ? r.kind != kEscape : r.value != v);
      }
    }
    // Uniform: narrow, wide (split into high part + raw bits) and full ranges.
    for (auto [lo, hi] : {std::pair<int32_t, int32_t>{0, 0}, {-3, 9}, {0, (1 << 15) - 1}, {-100000, 100000},
                          {INT32_MIN, INT32_MAX}, {INT32_MAX - 5, INT32_MAX}, {-(1 << 30), 1 << 30}}) {
      const UniformCanon c = uniform_canon(lo, hi, p);
      for (int t = 0; t < 500; ++t) {
        const int64_t span = static_cast<int64_t>(hi) - lo + 1;
        const int32_t v = t % 10 == 0 ? static_cast<int32_t>(g())
                                      : static_cast<int32_t>(lo + static_cast<int64_t>(g() % static_cast<uint64_t>(span)));
        bool esc;
        uint32_t rb, rv;
        const uint64_t st = uniform_step(c, v, p, &esc, &rb, &rv);
        const uint32_t slot = static_cast<uint32_t>(st) + static_cast<uint32_t>(g() % (st >> 32));
        const Lookup r = uniform_lookup(c, slot, p);
        bad += r.start != static_cast<uint32_t>(st) || r.raw_bits != rb;
        if (esc) {
          bad += r.kind != kEscape;
        } else {
          bad += static_cast<int32_t>(static_cast<uint32_t>(r.value) + rv) != v;
        }
      }
    }
  }
  std::printf("categorical / uniform: %d failures\n", bad);
  CHECK(bad == 0);
}

// Mixed calls through Encoder / Decoder at 1 and 2 threads: same bytes, same symbols.
void check_round_trip() {
  const std::size_t n = 300000;
  std::vector<double> mean(n), scale(n), width(n), offset(n), lam(n);
  std::vector<int32_t> sym(n), cat(n), zs(n), us(n), dq(n);
  for (std::size_t i = 0; i < n; ++i) {
    random_param(&mean[i], &scale[i]);
    const double centre = std::fmin(std::fmax(mean[i], -2e9), 2e9);
    sym[i] = static_cast<int32_t>(centre + scale[i] * unif(-3, 3));
    if (i % 97 == 0) sym[i] = static_cast<int32_t>(g());  // escapes
    width[i] = std::exp(unif(-2, 2));
    offset[i] = unif(-0.5, 0.5);
    dq[i] = static_cast<int32_t>(std::lround(unif(-20, 20) / width[i] + offset[i]));
    lam[i] = unif(1.01, 3.0);
    zs[i] = static_cast<int32_t>(1 + (g() % 5 == 0 ? g() % 100000 : g() % 4));
    cat[i] = static_cast<int32_t>(g() % 7) - 1;
    us[i] = static_cast<int32_t>(g() % 1000) - 500;
  }
  std::vector<float> probs = {0.5f, 0.25f, 0.125f, 0.0625f, 0.0625f};
  std::vector<std::vector<uint8_t>> streams;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    StreamParams sp;
    sp.segment_log2 = 16;
    Encoder enc(sp);
    enc.encode(sym.data(), n, ParamArgs{Shape::kGaussian, RealArg::f64(mean.data()), RealArg::f64(scale.data())});
    enc.encode(cat.data(), 1000, TableArgs{RealArg::f32(probs.data()), probs.size(), true});
    enc.encode(sym.data(), n, ParamArgs{Shape::kLogistic, RealArg::f64(mean.data()), RealArg::scalar(3.5)});
    ParamArgs dith{Shape::kLaplace, RealArg::scalar(0.25), RealArg::scalar(4.0), true, RealArg::f64(width.data()),
                   RealArg::f64(offset.data())};
    enc.encode(dq.data(), n, dith);
    enc.encode(zs.data(), n, ZipfArgs{RealArg::f64(lam.data()), 1 << 20});
    enc.encode(zs.data(), 5000, ZipfArgs{RealArg::scalar(1.2), 1 << 10});
    enc.encode(us.data(), n, UniformArgs{IntArg::scalar(-300), IntArg::scalar(300)});
    enc.encode(sym.data(), 0, ParamArgs{Shape::kGaussian, RealArg::scalar(0), RealArg::scalar(1)});
    streams.push_back(enc.finish());

    Decoder dec(streams.back().data(), streams.back().size());
    std::vector<int32_t> out(n);
    int bad = 0;
    dec.decode(out.data(), n, ParamArgs{Shape::kGaussian, RealArg::f64(mean.data()), RealArg::f64(scale.data())});
    for (std::size_t i = 0; i < n; ++i) bad += out[i] != sym[i];
    dec.decode(out.data(), 1000, TableArgs{RealArg::f32(probs.data()), probs.size(), true});
    for (std::size_t i = 0; i < 1000; ++i) bad += out[i] != cat[i];
    dec.decode(out.data(), n, ParamArgs{Shape::kLogistic, RealArg::f64(mean.data()), RealArg::scalar(3.5)});
    for (std::size_t i = 0; i < n; ++i) bad += out[i] != sym[i];
    dec.decode(out.data(), n, dith);
    for (std::size_t i = 0; i < n; ++i) bad += out[i] != dq[i];
    dec.decode(out.data(), n, ZipfArgs{RealArg::f64(lam.data()), 1 << 20});
    for (std::size_t i = 0; i < n; ++i) bad += out[i] != zs[i];
    dec.decode(out.data(), 5000, ZipfArgs{RealArg::scalar(1.2), 1 << 10});
    for (std::size_t i = 0; i < 5000; ++i) bad += out[i] != zs[i];
    dec.decode(out.data(), n, UniformArgs{IntArg::scalar(-300), IntArg::scalar(300)});
    for (std::size_t i = 0; i < n; ++i) bad += out[i] != us[i];
    CHECK(dec.remaining() == 0);
    std::printf("round trip at %d thread(s): %zu bytes, %d mismatches\n", threads, streams.back().size(), bad);
    CHECK(bad == 0);
  }
  set_num_threads(0);
  CHECK(streams[0] == streams[1]);
}

}  // namespace

int main() {
  check_param_family<Shape::kGaussian>("gaussian");
  check_param_family<Shape::kLogistic>("logistic");
  check_param_family<Shape::kLaplace>("laplace");
  check_zipf();
  check_tables_and_uniform();
  check_round_trip();
  return chansim_test::finish("test_rans_families");
}

// PFR screening: the approximate normals obey their stated error bound over
// the whole 32-bit word range (strided, plus both far tails word by word), and
// the screened search picks exactly the candidate, stopping point and
// examined count of the search that scores every candidate exactly.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "channel/pfr.h"
#include "check.h"
#include "common/transforms.h"

using namespace chansim;
using namespace chansim::pfr;

namespace {

void test_error_bound() {
  const double bound = pfr_screen_error_bound();
  CHECK(bound > 0.0 && bound <= 2e-4);
  std::vector<uint32_t> w;
  for (uint64_t v = 0; v < (uint64_t{1} << 32); v += 251) w.push_back(static_cast<uint32_t>(v));
  for (uint32_t v = 0; v < (1u << 18); ++v) {
    w.push_back(v);
    w.push_back(0xFFFFFFFFu - v);
  }
  std::vector<float> approx(w.size());
  pfr_screen_normals(w.data(), approx.data(), w.size());
  double worst = 0.0;
  std::size_t exact = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double e = std::fabs(static_cast<double>(approx[i]) - static_cast<double>(normal_f32(w[i])));
    worst = std::fmax(worst, e);
    exact += approx[i] == normal_f32(w[i]);
  }
  std::printf("screening normals: %zu words (%zu exact), max error %.3g (bound %.3g)\n", w.size(), exact, worst, bound);
  CHECK(worst <= bound);
}

void test_same_choice_as_unscreened() {
  std::mt19937_64 rng(2024);
  std::normal_distribution<double> nd;
  std::uniform_real_distribution<double> ud(0.0, 1.0);
  int cases = 0, differing = 0;
  for (std::size_t d : {1, 2, 3, 16, 100, 256}) {
    for (int trial = 0; trial < 8; ++trial) {
      const bool quad = trial % 2 == 1;
      const double kl_bits = 1.0 + 11.0 * ud(rng);
      // Equal variances: lin = m, c0 = -|m|^2 / 2. Otherwise a narrower q.
      std::vector<double> lin(d), qd(d);
      double norm2 = 0.0;
      for (auto& v : lin) {
        v = nd(rng);
        norm2 += v * v;
      }
      const double scale = std::sqrt(2.0 * kl_bits * std::log(2.0) / norm2);
      double c0 = 0.0;
      for (std::size_t i = 0; i < d; ++i) {
        lin[i] *= scale;
        c0 -= 0.5 * lin[i] * lin[i];
        qd[i] = quad ? -0.5 * (1.0 / (0.6 + 0.4 * ud(rng)) - 1.0) : 0.0;
      }
      PfrChunk c{lin.data(), quad ? qd.data() : nullptr, c0, d, rng(), rng()};
      const uint64_t k = uint64_t{1} << (6 + trial % 9);
      PfrSearch s{rng(), k, std::numeric_limits<double>::infinity(), trial % 3 == 2 ? PfrArrivals::Ordered
                                                                                   : PfrArrivals::Poisson};
      if (!quad && trial % 4 == 0) s.log_r_bound = 0.5 * std::sqrt(norm2) * scale * 6.5;  // a finite stopping rule
      const PfrResult ref = pfr_search_unscreened(c, s);
      const PfrResult one = pfr_search(c, s, 1);
      const PfrResult two = pfr_search(c, s, 2);
      CHECK(one.index == ref.index && one.examined == ref.examined && one.stopped == ref.stopped);
      CHECK(two.index == ref.index);
      differing += one.index != ref.index;
      ++cases;
    }
  }
  std::printf("screened vs unscreened search: %d cases, %d differing\n", cases, differing);
}

}  // namespace

int main() {
  test_error_bound();
  test_same_choice_as_unscreened();
  return chansim_test::finish("test_pfr_screen");
}

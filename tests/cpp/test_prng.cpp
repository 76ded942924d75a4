// Batch generation: random access, thread-count and ISA invariance, transform
// accuracy (log against libm, quantile symmetry and monotonicity).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "check.h"
#include "common/parallel.h"
#include "common/philox.h"
#include "common/prng.h"
#include "common/transforms.h"

using namespace chansim;
using namespace chansim::prng;

static double ulp_distance(double a, double b) {
  return std::fabs(a - b) / std::fabs(std::nextafter(b, INFINITY) - b);
}

int main() {
  const uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
  const std::size_t n = 300001;  // odd and > one thread grain

  // Raw words: batch == scalar random access, any start offset.
  std::vector<uint32_t> w(n);
  fill_words(seed, stream, 7, w.data(), n);
  for (std::size_t i = 0; i < n; i += 997) CHECK(w[i] == philox_word(seed, stream, 7 + i));

  // Every variate and dtype: batch == scalar transform of the addressed word,
  // identical at 1 and 2 threads and for the baseline kernels.
  for (int v = 0; v < 3; ++v) {
    std::vector<float> a(n), b(n), c(n);
    std::vector<double> da(n), db(n), dc(n);
    set_num_threads(1);
    fill_f32(static_cast<Variate>(v), seed, stream, 3, a.data(), n);
    fill_f64(static_cast<Variate>(v), seed, stream, 5, da.data(), n);
    set_num_threads(2);
    fill_f32(static_cast<Variate>(v), seed, stream, 3, b.data(), n);
    fill_f64(static_cast<Variate>(v), seed, stream, 5, db.data(), n);
    CHECK(std::memcmp(a.data(), b.data(), n * sizeof(float)) == 0);
    CHECK(std::memcmp(da.data(), db.data(), n * sizeof(double)) == 0);
    const auto& base = kernels::prng_baseline();
    base.f32(v, seed, stream, 3, c.data(), n);
    base.f64(v, seed, stream, 5, dc.data(), n);
    CHECK(std::memcmp(a.data(), c.data(), n * sizeof(float)) == 0);
    CHECK(std::memcmp(da.data(), dc.data(), n * sizeof(double)) == 0);
    for (std::size_t i = 0; i < n; i += 101) {
      const uint32_t wi = philox_word(seed, stream, 3 + i);
      const uint64_t xi = philox_u64(seed, stream, 5 + i);
      float e32 = 0;
      double e64 = 0;
      if (v == 0) { e32 = uniform_f32(wi); e64 = uniform_f64(xi); }
      if (v == 1) { e32 = normal_f32(wi); e64 = normal_f64(xi); }
      if (v == 2) { e32 = exponential_f32(wi); e64 = exponential_f64(xi); }
      CHECK(std::memcmp(&a[i], &e32, sizeof e32) == 0);
      CHECK(std::memcmp(&da[i], &e64, sizeof e64) == 0);
    }
  }
  set_num_threads(0);

  // Uniform grids stay inside (0, 1) at the extreme words.
  CHECK(uniform_f32(0u) > 0.0f && uniform_f32(0xffffffffu) < 1.0f);
  CHECK(uniform_f64(0ull) > 0.0 && uniform_f64(~0ull) < 1.0);
  CHECK(uniform_f64_from32(0u) > 0.0 && uniform_f64_from32(0xffffffffu) < 1.0);

  // det_log within 1 ulp of libm over the whole range of arguments used.
  double worst = 0;
  for (int i = 0; i < 200000; ++i) {
    const double x = uniform_f64(philox_u64(1, 2, i)) * std::ldexp(1.0, -(i % 54));
    worst = std::fmax(worst, ulp_distance(det_log(x), std::log(x)));
  }
  std::printf("det_log: max error %.3f ulp against libm\n", worst);
  CHECK(worst <= 1.0);

  // ndtri: exact antisymmetry on the grid, monotone, known quantiles.
  for (uint32_t k = 0; k < 100000; ++k) {
    const double p = uniform_f64(philox_u64(3, 4, k));
    CHECK(ndtri(p) == -ndtri(1.0 - p));
  }
  double prev = -INFINITY;
  for (int i = 1; i < 20000; ++i) {
    const double x = ndtri(i / 20000.0);
    CHECK(x > prev);
    prev = x;
  }
  CHECK(std::fabs(ndtri(0.975) - 1.959963984540054) < 1e-14);
  CHECK(std::fabs(ndtri(1e-10) + 6.361340902404056) < 1e-12);
  CHECK(std::fabs(ndtri(1.1102230246251565e-16) + 8.209536151601387) < 1e-13);
  CHECK(std::fabs(ndtri(1e-300) + 37.0470962993612) < 1e-11);
  std::printf("prng isa: %s\n", prng_isa());
  return chansim_test::finish("test_prng");
}

#include <limits>

#include "bindings.h"
#include "common/parallel.h"
#include "common/philox.h"
#include "common/prng.h"

namespace chansim {
namespace bind {
namespace {

// Largest n accepted by one call (2^32 elements), so a typo cannot ask for
// terabytes.
constexpr uint64_t kMaxElements = uint64_t(1) << 32;

void check_range(uint64_t start, std::size_t n, unsigned bits) {
  if (n > kMaxElements) throw py::value_error("n = " + std::to_string(n) + " exceeds the per-call limit of 2**32");
  // start + n <= 2^bits (bits <= 64), checked without overflow.
  const bool beyond = bits < 64 ? (n > (uint64_t(1) << bits) || start > (uint64_t(1) << bits) - n)
                                : (n > 0 && start > std::numeric_limits<uint64_t>::max() - (n - 1));
  if (beyond) {
    const uint64_t sum = start + n;  // wraps past 2^64 to sum < n <= 2^32, exact in double
    const double end = sum >= start ? static_cast<double>(sum) : 18446744073709551616.0 + static_cast<double>(sum);
    throw py::value_error("start + n = " + std::to_string(end) + " is beyond the addressable range 2**" +
                          std::to_string(bits) + " of this variate");
  }
}

uint64_t stream_id_py(uint64_t purpose, uint64_t step, uint64_t chunk) {
  if (purpose > 0xFF) throw py::value_error("stream_id: purpose must be in [0, 256)");
  if (step > 0xFFFF) throw py::value_error("stream_id: step must be in [0, 65536)");
  if (chunk > 0xFFFFFFFFFFull) throw py::value_error("stream_id: chunk must be in [0, 2**40)");
  return stream_id(static_cast<uint32_t>(purpose), static_cast<uint32_t>(step), chunk);
}

py::array_t<uint32_t> philox4x32(const py::array& counter, const py::array& key) {
  require_array<uint32_t>(counter, "counter", false);
  require_array<uint32_t>(key, "key", false);
  if (counter.ndim() != 2 || counter.shape(1) != 4) throw py::value_error("counter: expected shape (n, 4)");
  if (key.ndim() != 2 || key.shape(1) != 2 || key.shape(0) != counter.shape(0))
    throw py::value_error("key: expected shape (n, 2) matching counter");
  const std::size_t n = static_cast<std::size_t>(counter.shape(0));
  py::array_t<uint32_t> out({static_cast<py::ssize_t>(n), py::ssize_t(4)});
  const uint32_t* c = static_cast<const uint32_t*>(counter.data());
  const uint32_t* k = static_cast<const uint32_t*>(key.data());
  uint32_t* o = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    parallel_for(n, 1 << 14, 1, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        uint32_t x[4] = {c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]};
        philox4x32_10(x, k[2 * i], k[2 * i + 1]);
        for (int j = 0; j < 4; ++j) o[4 * i + j] = x[j];
      }
    });
  }
  return out;
}

void fill_words_py(uint64_t seed, uint64_t stream, uint64_t start, py::array& out) {
  require_array<uint32_t>(out, "out", true);
  const std::size_t n = static_cast<std::size_t>(out.size());
  check_range(start, n, 64);
  uint32_t* o = static_cast<uint32_t*>(out.mutable_data());
  py::gil_scoped_release nogil;
  prng::fill_words(seed, stream, start, o, n);
}

void fill_py(int variate, uint64_t seed, uint64_t stream, uint64_t start, py::array& out) {
  if (variate < 0 || variate > 2) throw py::value_error("variate must be 0 (uniform), 1 (normal) or 2 (exponential)");
  const std::size_t n = static_cast<std::size_t>(out.size());
  if (py::isinstance<py::array_t<float>>(out)) {
    require_array<float>(out, "out", true);
    check_range(start, n, 64);
    float* o = static_cast<float*>(out.mutable_data());
    py::gil_scoped_release nogil;
    prng::fill_f32(static_cast<prng::Variate>(variate), seed, stream, start, o, n);
  } else if (py::isinstance<py::array_t<double>>(out)) {
    require_array<double>(out, "out", true);
    check_range(start, n, 63);  // float64 element i uses words 2i, 2i+1
    double* o = static_cast<double*>(out.mutable_data());
    py::gil_scoped_release nogil;
    prng::fill_f64(static_cast<prng::Variate>(variate), seed, stream, start, o, n);
  } else {
    throw py::value_error("out: unsupported dtype " + std::string(py::str(out.dtype())) +
                          " (float32 or float64)");
  }
}

}  // namespace

void register_common(py::module_& m) {
  m.def("philox4x32", &philox4x32, py::arg("counter"), py::arg("key"),
        "Philox4x32-10 of each row of counter (n, 4) under key (n, 2).");
  m.def("fill_words", &fill_words_py, py::arg("seed"), py::arg("stream"), py::arg("start"), py::arg("out"),
        "Write words start .. start+len(out)-1 of (seed, stream) into out (uint32).");
  m.def("fill", &fill_py, py::arg("variate"), py::arg("seed"), py::arg("stream"), py::arg("start"), py::arg("out"),
        "Write variates start .. start+len(out)-1 (0 uniform, 1 normal, 2 exponential) into out.");
  m.def("stream_id", &stream_id_py, py::arg("purpose"), py::arg("step"), py::arg("chunk"));
  m.def("num_threads", &num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("prng_isa", &prng::prng_isa);
}

}  // namespace bind
}  // namespace chansim

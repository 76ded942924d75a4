// Bindings of the channel-simulation core: dithered quantization and PFR.
#include <cmath>
#include <limits>
#include <vector>

#include "bindings.h"
#include "channel/dq.h"
#include "channel/pfr.h"
#include "common/parallel.h"

namespace chansim {
namespace bind {
namespace {

constexpr std::size_t kMaxElements = std::size_t(1) << 32;

dq::Param<double> param(const py::array& a, const char* name, std::size_t n) {
  require_array<double>(a, name, false);
  const std::size_t sz = static_cast<std::size_t>(a.size());
  if (sz != 1 && sz != n)
    throw py::value_error(std::string(name) + ": expected 1 or " + std::to_string(n) + " values, got " +
                          std::to_string(sz));
  const double* d = static_cast<const double*>(a.data());
  for (std::size_t i = 0; i < sz; ++i)
    if (!std::isfinite(d[i])) throw py::value_error(std::string(name) + " contains NaN or Inf");
  return dq::Param<double>{d, sz};
}

void check_steps(const dq::Param<double>& step) {
  for (std::size_t i = 0; i < step.size; ++i)
    if (!(step.data[i] > 0)) throw py::value_error("step must be > 0 everywhere");
}

void check_dither_range(uint64_t start, std::size_t n) {
  if (n > kMaxElements) throw py::value_error("too many elements in one call (limit 2**32)");
  if (n > 0 && start > std::numeric_limits<uint64_t>::max() - (n - 1))
    throw py::value_error("start + n is beyond the 2**64 dither addresses of a stream");
}

template <class X>
std::size_t quantize_typed(const py::array& x, dq::Param<double> mu, dq::Param<double> step, uint64_t seed,
                           uint64_t stream, uint64_t start, int32_t* k, std::size_t n) {
  const X* xp = static_cast<const X*>(x.data());
  std::size_t bad;
  {
    py::gil_scoped_release nogil;
    bad = dq::dq_quantize<X>(xp, mu, step, seed, stream, start, k, n);
  }
  if (bad < n && !std::isfinite(static_cast<double>(xp[bad])))
    throw py::value_error("x contains NaN or Inf (element " + std::to_string(bad) + ")");
  return bad;
}

py::array_t<int32_t> dq_quantize_py(const py::array& x, const py::array& mu, const py::array& step, uint64_t seed,
                                     uint64_t stream, uint64_t start) {
  const std::size_t n = static_cast<std::size_t>(x.size());
  check_dither_range(start, n);
  const auto m = param(mu, "mu", n);
  const auto s = param(step, "step", n);
  check_steps(s);
  py::array_t<int32_t> k(static_cast<py::ssize_t>(n));
  std::size_t bad;
  if (py::isinstance<py::array_t<float>>(x)) {
    require_array<float>(x, "x", false);
    bad = quantize_typed<float>(x, m, s, seed, stream, start, k.mutable_data(), n);
  } else {
    require_array<double>(x, "x", false);
    bad = quantize_typed<double>(x, m, s, seed, stream, start, k.mutable_data(), n);
  }
  if (bad < n)
    throw py::value_error("quantization index of element " + std::to_string(bad) +
                          " does not fit in int32: step too small for the value");
  return k;
}

py::array dq_dequantize_py(const py::array& k, const py::array& mu, const py::array& step, uint64_t seed,
                           uint64_t stream, uint64_t start, bool float64) {
  require_array<int32_t>(k, "k", false);
  const std::size_t n = static_cast<std::size_t>(k.size());
  check_dither_range(start, n);
  const auto m = param(mu, "mu", n);
  const auto s = param(step, "step", n);
  check_steps(s);
  const int32_t* kp = static_cast<const int32_t*>(k.data());
  if (float64) {
    py::array_t<double> out(static_cast<py::ssize_t>(n));
    double* o = out.mutable_data();
    py::gil_scoped_release nogil;
    dq::dq_dequantize<double>(kp, m, s, seed, stream, start, o, n);
    return std::move(out);
  }
  py::array_t<float> out(static_cast<py::ssize_t>(n));
  float* o = out.mutable_data();
  py::gil_scoped_release nogil;
  dq::dq_dequantize<float>(kp, m, s, seed, stream, start, o, n);
  return std::move(out);
}

py::array_t<double> dq_dithers_py(uint64_t seed, uint64_t stream, uint64_t start, std::size_t n) {
  check_dither_range(start, n);
  py::array_t<double> u(static_cast<py::ssize_t>(n));
  double* o = u.mutable_data();
  py::gil_scoped_release nogil;
  dq::dq_dithers(seed, stream, start, o, n);
  return u;
}

// Searches every chunk of a PFR message. Chunk c owns coefficients
// [offsets[c], offsets[c+1]) of lin/quad (contiguous, gathered by the caller).
py::tuple pfr_search_py(const py::array& lin, const py::object& quad_obj, const py::array& c0,
                        const py::array& offsets, uint64_t seed, const py::array& cand_streams,
                        const py::array& arrival_streams, const py::array& budgets, const py::array& bounds,
                        int arrivals) {
  require_array<double>(lin, "lin", false);
  require_array<double>(c0, "c0", false);
  require_array<uint64_t>(offsets, "offsets", false);
  require_array<uint64_t>(cand_streams, "cand_streams", false);
  require_array<uint64_t>(arrival_streams, "arrival_streams", false);
  require_array<uint64_t>(budgets, "budgets", false);
  require_array<double>(bounds, "bounds", false);
  if (arrivals != 0 && arrivals != 1) throw py::value_error("arrivals must be 0 (Poisson) or 1 (ordered)");
  const std::size_t chunks = static_cast<std::size_t>(c0.size());
  const std::size_t d = static_cast<std::size_t>(lin.size());
  if (static_cast<std::size_t>(offsets.size()) != chunks + 1) throw py::value_error("offsets: expected chunks + 1 values");
  for (const py::array* a : {&cand_streams, &arrival_streams, &budgets})
    if (static_cast<std::size_t>(a->size()) != chunks) throw py::value_error("per-chunk arrays must have one value per chunk");
  if (static_cast<std::size_t>(bounds.size()) != chunks) throw py::value_error("bounds: one value per chunk");
  const uint64_t* off = static_cast<const uint64_t*>(offsets.data());
  if (off[0] != 0 || off[chunks] != d) throw py::value_error("offsets must start at 0 and end at len(lin)");
  for (std::size_t c = 0; c < chunks; ++c)
    if (off[c + 1] < off[c]) throw py::value_error("offsets must be non-decreasing");
  const double* quad = nullptr;
  if (!quad_obj.is_none()) {
    py::array q = py::array::ensure(quad_obj);
    if (!q) throw py::value_error("quad must be an array or None");
    require_array<double>(q, "quad", false);
    if (static_cast<std::size_t>(q.size()) != d) throw py::value_error("quad must have the length of lin");
    quad = static_cast<const double*>(q.data());
  }
  const double* l = static_cast<const double*>(lin.data());
  const double* c0p = static_cast<const double*>(c0.data());
  const uint64_t* cs = static_cast<const uint64_t*>(cand_streams.data());
  const uint64_t* as = static_cast<const uint64_t*>(arrival_streams.data());
  const uint64_t* bud = static_cast<const uint64_t*>(budgets.data());
  const double* bnd = static_cast<const double*>(bounds.data());
  for (std::size_t c = 0; c < chunks; ++c) {
    if (bud[c] < 1 || bud[c] > (uint64_t(1) << 40)) throw py::value_error("budgets must be in [1, 2**40]");
    if (std::isnan(bnd[c]) || !std::isfinite(c0p[c])) throw py::value_error("c0/bounds must not be NaN");
    const uint64_t len = off[c + 1] - off[c];
    if (len > 0 && bud[c] > std::numeric_limits<uint64_t>::max() / len)
      throw py::value_error("budget x chunk length overflows 64-bit candidate offsets");
  }
  for (std::size_t i = 0; i < d; ++i)
    if (!std::isfinite(l[i]) || (quad && !std::isfinite(quad[i]))) throw py::value_error("lin/quad contain NaN or Inf");

  py::array_t<uint64_t> index(static_cast<py::ssize_t>(chunks));
  py::array_t<uint64_t> examined(static_cast<py::ssize_t>(chunks));
  py::array_t<bool> stopped(static_cast<py::ssize_t>(chunks));
  uint64_t* ip = index.mutable_data();
  uint64_t* ep = examined.mutable_data();
  bool* sp = stopped.mutable_data();
  {
    py::gil_scoped_release nogil;
    const int threads = num_threads();
    auto run = [&](std::size_t c, int inner) {
      pfr::PfrChunk ch{l + off[c], quad ? quad + off[c] : nullptr, c0p[c],
                       static_cast<std::size_t>(off[c + 1] - off[c]), cs[c], as[c]};
      pfr::PfrSearch s{seed, bud[c], bnd[c], static_cast<pfr::PfrArrivals>(arrivals)};
      const pfr::PfrResult r = pfr::pfr_search(ch, s, inner);
      ip[c] = r.index;
      ep[c] = r.examined;
      sp[c] = r.stopped;
    };
    if (chunks >= static_cast<std::size_t>(2 * threads)) {
      parallel_for(chunks, 1, 1, [&](std::size_t b, std::size_t e) {
        for (std::size_t c = b; c < e; ++c) run(c, 1);
      });
    } else {
      for (std::size_t c = 0; c < chunks; ++c) run(c, threads);
    }
  }
  return py::make_tuple(index, examined, stopped);
}

// Regenerates the chosen candidate of every chunk (standardised eps, float32).
py::array_t<float> pfr_candidates_py(uint64_t seed, const py::array& cand_streams, const py::array& indices,
                                     const py::array& offsets) {
  require_array<uint64_t>(cand_streams, "cand_streams", false);
  require_array<uint64_t>(indices, "indices", false);
  require_array<uint64_t>(offsets, "offsets", false);
  const std::size_t chunks = static_cast<std::size_t>(indices.size());
  if (static_cast<std::size_t>(cand_streams.size()) != chunks || static_cast<std::size_t>(offsets.size()) != chunks + 1)
    throw py::value_error("cand_streams/indices/offsets sizes disagree");
  const uint64_t* off = static_cast<const uint64_t*>(offsets.data());
  const uint64_t* idx = static_cast<const uint64_t*>(indices.data());
  const uint64_t* cs = static_cast<const uint64_t*>(cand_streams.data());
  if (off[0] != 0) throw py::value_error("offsets must start at 0");
  for (std::size_t c = 0; c < chunks; ++c) {
    if (off[c + 1] < off[c]) throw py::value_error("offsets must be non-decreasing");
    const uint64_t len = off[c + 1] - off[c];
    if (idx[c] < 1) throw py::value_error("candidate indices are 1-based");
    if (len > 0 && idx[c] - 1 > (std::numeric_limits<uint64_t>::max() - len) / len)
      throw py::value_error("candidate index x chunk length overflows 64-bit offsets");
  }
  if (off[chunks] > kMaxElements) throw py::value_error("too many coordinates (limit 2**32)");
  py::array_t<float> eps(static_cast<py::ssize_t>(off[chunks]));
  float* e = eps.mutable_data();
  py::gil_scoped_release nogil;
  parallel_for(chunks, 64, 1, [&](std::size_t b, std::size_t en) {
    for (std::size_t c = b; c < en; ++c) pfr::pfr_candidate(seed, cs[c], idx[c], off[c + 1] - off[c], e + off[c]);
  });
  return eps;
}

}  // namespace

void register_channel(py::module_& m) {
  m.def("dq_quantize", &dq_quantize_py, py::arg("x"), py::arg("mu"), py::arg("step"), py::arg("seed"),
        py::arg("stream"), py::arg("start"));
  m.def("dq_dequantize", &dq_dequantize_py, py::arg("k"), py::arg("mu"), py::arg("step"), py::arg("seed"),
        py::arg("stream"), py::arg("start"), py::arg("float64"));
  m.def("dq_dithers", &dq_dithers_py, py::arg("seed"), py::arg("stream"), py::arg("start"), py::arg("n"));
  m.def("pfr_search", &pfr_search_py, py::arg("lin"), py::arg("quad"), py::arg("c0"), py::arg("offsets"),
        py::arg("seed"), py::arg("cand_streams"), py::arg("arrival_streams"), py::arg("budgets"), py::arg("bounds"),
        py::arg("arrivals"));
  m.def("pfr_candidates", &pfr_candidates_py, py::arg("seed"), py::arg("cand_streams"), py::arg("indices"),
        py::arg("offsets"));
}

}  // namespace bind
}  // namespace chansim

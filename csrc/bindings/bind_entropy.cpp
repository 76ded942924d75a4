// chansim._core.RansEncoder / RansDecoder: the rANS coder with its model
// families. chansim.rans prepares the arguments (dtype conversion, broadcasting,
// shapes); this layer checks them again so _core is safe on its own, and
// releases the GIL while coding. A corrupt stream throws chansim::FormatError,
// which module.cpp maps to chansim.FormatError.
#include <mutex>
#include <string>

#include "bindings.h"
#include "entropy/coder.h"

namespace chansim {
namespace bind {
namespace {

using rans::IntArg;
using rans::RealArg;

std::size_t symbol_count(const py::array& symbols) {
  require_array<int32_t>(symbols, "symbols", false);
  return static_cast<std::size_t>(symbols.size());
}

// A float32/float64 array of exactly n elements, or a number for all symbols.
RealArg real_arg(const py::object& o, std::size_t n, const char* name) {
  if (!py::isinstance<py::array>(o)) return RealArg::scalar(o.cast<double>());
  const py::array a = py::reinterpret_borrow<py::array>(o);
  if (static_cast<std::size_t>(a.size()) != n)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(n) + " elements, got " +
                          std::to_string(a.size()));
  if (py::isinstance<py::array_t<float>>(a)) {
    require_array<float>(a, name, false);
    return RealArg::f32(static_cast<const float*>(a.data()));
  }
  require_array<double>(a, name, false);
  return RealArg::f64(static_cast<const double*>(a.data()));
}

IntArg int_arg(const py::object& o, std::size_t n, const char* name) {
  if (!py::isinstance<py::array>(o)) {
    const long long v = o.cast<long long>();
    if (v < INT32_MIN || v > INT32_MAX) throw py::value_error(std::string(name) + " must fit in int32");
    return IntArg::scalar(static_cast<int32_t>(v));
  }
  const py::array a = py::reinterpret_borrow<py::array>(o);
  require_array<int32_t>(a, name, false);
  if (static_cast<std::size_t>(a.size()) != n)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(n) + " elements, got " +
                          std::to_string(a.size()));
  return IntArg::array(static_cast<const int32_t*>(a.data()));
}

rans::ParamArgs param_args(int shape, std::size_t n, const py::object& mean, const py::object& scale,
                           const py::object& width, const py::object& offset) {
  if (shape < 0 || shape > 2) throw py::value_error("shape must be 0 (Gaussian), 1 (logistic) or 2 (Laplace)");
  rans::ParamArgs a{static_cast<rans::Shape>(shape), real_arg(mean, n, "means"), real_arg(scale, n, "scales")};
  if (!width.is_none() || !offset.is_none()) {
    if (width.is_none() || offset.is_none()) throw py::value_error("width and offset go together");
    a.dithered = true;
    a.width = real_arg(width, n, "width");
    a.offset = real_arg(offset, n, "offset");
  }
  return a;
}

rans::TableArgs table_args(std::size_t n, const py::array& probs, bool shared) {
  if (probs.ndim() < 1) throw py::value_error("probabilities: expected at least one dimension");
  const std::size_t K = static_cast<std::size_t>(probs.shape(probs.ndim() - 1));
  const std::size_t rows = shared ? 1 : n;
  if (static_cast<std::size_t>(probs.size()) != rows * K)
    throw py::value_error("probabilities: expected " + std::to_string(rows) + " rows of " + std::to_string(K));
  return {real_arg(probs, rows * K, "probabilities"), K, shared};
}

// The coders are not reentrant: a lock makes concurrent use from Python threads
// (possible once the GIL is released) safe rather than undefined.
struct PyEncoder {
  rans::Encoder enc;
  std::mutex mu;
};
struct PyDecoder {
  rans::Decoder dec;
  std::mutex mu;
};

template <class Args>
void encode(PyEncoder& e, const py::array& symbols, const Args& args) {
  const int32_t* sym = static_cast<const int32_t*>(symbols.data());
  const std::size_t n = static_cast<std::size_t>(symbols.size());
  py::gil_scoped_release nogil;
  std::lock_guard<std::mutex> lock(e.mu);
  e.enc.encode(sym, n, args);
}

template <class Args>
py::array_t<int32_t> decode(PyDecoder& d, std::size_t n, const Args& args) {
  if (n > d.dec.remaining())  // before allocating the output
    throw FormatError("rANS stream: " + std::to_string(n) + " symbols requested but only " +
                            std::to_string(d.dec.remaining()) + " remain");
  py::array_t<int32_t> out(static_cast<py::ssize_t>(n));
  int32_t* o = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(d.mu);
    d.dec.decode(o, n, args);
  }
  return out;
}

}  // namespace

void register_entropy(py::module_& m) {
  py::class_<PyEncoder>(m, "RansEncoder", "rANS encoder buffering model-family calls (see chansim.rans.Encoder).")
      .def(py::init([](int precision, int lanes, int segment_log2) {
             rans::StreamParams p{precision, lanes, segment_log2};
             try {
               rans::validate_params(p);
             } catch (const std::invalid_argument& e) {
               throw py::value_error(e.what());
             }
             return new PyEncoder{rans::Encoder(p), {}};
           }),
           py::arg("precision"), py::arg("lanes"), py::arg("segment_log2"))
      .def_property_readonly("size", [](PyEncoder& e) { return e.enc.size(); })
      .def(
          "param",
          [](PyEncoder& e, int shape, const py::array& symbols, const py::object& mean, const py::object& scale,
             const py::object& width, const py::object& offset) {
            const std::size_t n = symbol_count(symbols);
            encode(e, symbols, param_args(shape, n, mean, scale, width, offset));
          },
          py::arg("shape"), py::arg("symbols"), py::arg("means"), py::arg("scales"), py::arg("width") = py::none(),
          py::arg("offset") = py::none())
      .def(
          "categorical",
          [](PyEncoder& e, const py::array& symbols, const py::array& probs, bool shared) {
            const std::size_t n = symbol_count(symbols);
            encode(e, symbols, table_args(n, probs, shared));
          },
          py::arg("symbols"), py::arg("probabilities"), py::arg("shared"))
      .def(
          "zipf",
          [](PyEncoder& e, const py::array& symbols, const py::object& lam, int64_t n_max) {
            const std::size_t n = symbol_count(symbols);
            encode(e, symbols, rans::ZipfArgs{real_arg(lam, n, "lam"), n_max});
          },
          py::arg("symbols"), py::arg("lam"), py::arg("n_max"))
      .def(
          "uniform",
          [](PyEncoder& e, const py::array& symbols, const py::object& low, const py::object& high) {
            const std::size_t n = symbol_count(symbols);
            encode(e, symbols, rans::UniformArgs{int_arg(low, n, "low"), int_arg(high, n, "high")});
          },
          py::arg("symbols"), py::arg("low"), py::arg("high"))
      .def("finish", [](PyEncoder& e) {
        std::vector<uint8_t> bytes;
        {
          py::gil_scoped_release nogil;
          std::lock_guard<std::mutex> lock(e.mu);
          bytes = e.enc.finish();
        }
        return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      });

  py::class_<PyDecoder>(m, "RansDecoder", "rANS decoder (see chansim.rans.Decoder).")
      .def(py::init([](const py::bytes& data) {
             const std::string s = data;
             return new PyDecoder{rans::Decoder(reinterpret_cast<const uint8_t*>(s.data()), s.size()), {}};
           }),
           py::arg("data"))
      .def_property_readonly("size", [](PyDecoder& d) { return d.dec.size(); })
      .def_property_readonly("remaining", [](PyDecoder& d) { return d.dec.remaining(); })
      .def_property_readonly("precision", [](PyDecoder& d) { return d.dec.params().precision; })
      .def_property_readonly("lanes", [](PyDecoder& d) { return d.dec.params().lanes; })
      .def_property_readonly("segment_log2", [](PyDecoder& d) { return d.dec.params().segment_log2; })
      .def(
          "param",
          [](PyDecoder& d, int shape, std::size_t n, const py::object& mean, const py::object& scale,
             const py::object& width, const py::object& offset) {
            return decode(d, n, param_args(shape, n, mean, scale, width, offset));
          },
          py::arg("shape"), py::arg("n"), py::arg("means"), py::arg("scales"), py::arg("width") = py::none(),
          py::arg("offset") = py::none())
      .def(
          "categorical",
          [](PyDecoder& d, std::size_t n, const py::array& probs, bool shared) {
            return decode(d, n, table_args(n, probs, shared));
          },
          py::arg("n"), py::arg("probabilities"), py::arg("shared"))
      .def(
          "zipf",
          [](PyDecoder& d, std::size_t n, const py::object& lam, int64_t n_max) {
            return decode(d, n, rans::ZipfArgs{real_arg(lam, n, "lam"), n_max});
          },
          py::arg("n"), py::arg("lam"), py::arg("n_max"))
      .def(
          "uniform",
          [](PyDecoder& d, std::size_t n, const py::object& low, const py::object& high) {
            return decode(d, n, rans::UniformArgs{int_arg(low, n, "low"), int_arg(high, n, "high")});
          },
          py::arg("n"), py::arg("low"), py::arg("high"));
}

}  // namespace bind
}  // namespace chansim

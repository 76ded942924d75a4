// GPRS bindings: validation of every argument, GIL released around the
// per-channel work; malformed messages throw chansim::FormatError (raised as
// chansim.FormatError, see module.cpp).
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.h"
#include "channel/gprs.h"
#include "common/errors.h"
#include "common/parallel.h"

namespace chansim {
namespace bind {
namespace {

grc::Method method_of(int method) {
  if (method < 0 || method > 3)
    throw py::value_error("method must be 0 (gprs-sample), 1 (gprs-dyadic), 2 (grc-sample) or 3 (grc-dyadic)");
  return static_cast<grc::Method>(method);
}

std::size_t check_vec(const py::array& a, const char* name, std::size_t n) {
  require_array<double>(a, name, false);
  if (a.ndim() != 1) throw py::value_error(std::string(name) + ": expected a 1-D array");
  const std::size_t len = static_cast<std::size_t>(a.shape(0));
  if (n != static_cast<std::size_t>(-1) && len != n)
    throw py::value_error(std::string(name) + ": length " + std::to_string(len) + " does not match " +
                          std::to_string(n));
  return len;
}

py::tuple gprs_encode(const py::array& mu_q, const py::array& sigma_q, const py::array& mu_p,
                      const py::array& sigma_p, uint64_t seed, uint64_t stream, int method,
                      uint64_t max_steps) {
  const grc::Method meth = method_of(method);
  const grc::Split split = grc::split_of(meth);
  const bool use_grc = grc::is_grc(meth);
  const std::size_t n = check_vec(mu_q, "mu_q", static_cast<std::size_t>(-1));
  check_vec(sigma_q, "sigma_q", n);
  check_vec(mu_p, "mu_p", n);
  check_vec(sigma_p, "sigma_p", n);
  if (max_steps == 0) throw py::value_error("max_steps must be >= 1");
  const double* mq = static_cast<const double*>(mu_q.data());
  const double* sq = static_cast<const double*>(sigma_q.data());
  const double* mp = static_cast<const double*>(mu_p.data());
  const double* sp = static_cast<const double*>(sigma_p.data());
  for (std::size_t i = 0; i < n; ++i) {
    const std::string why = grc::gprs_check(mq[i], sq[i], mp[i], sp[i]);
    if (!why.empty()) throw py::value_error("channel " + std::to_string(i) + ": " + why);
  }
  py::array_t<double> samples(static_cast<py::ssize_t>(n));
  py::array_t<uint64_t> index_lo(static_cast<py::ssize_t>(n)), index_hi(static_cast<py::ssize_t>(n));
  py::array_t<uint64_t> steps(static_cast<py::ssize_t>(n));
  py::array_t<double> bits(static_cast<py::ssize_t>(n));
  double* xs = samples.mutable_data();
  uint64_t* lo = index_lo.mutable_data();
  uint64_t* hi = index_hi.mutable_data();
  uint64_t* st = steps.mutable_data();
  double* bt = bits.mutable_data();
  std::vector<u128> index(n);
  std::vector<uint64_t> keys(n);
  std::vector<uint8_t> data;
  std::atomic<std::size_t> first_fail{n};
  std::vector<int> status(n, 0);
  {
    py::gil_scoped_release nogil;
    parallel_for(n, 16, 1, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        const grc::GprsTarget t = grc::gprs_target(mq[i], sq[i], mp[i], sp[i]);
        const uint64_t key = grc::gprs_channel_key(seed, stream, i);
        keys[i] = key;
        const grc::GprsResult r =
            use_grc ? grc::grc_encode_one(t, key, split, max_steps) : grc::gprs_encode_one(t, key, split, max_steps);
        status[i] = static_cast<int>(r.status);
        st[i] = r.steps;
        if (r.status != grc::Status::Ok) {
          std::size_t cur = first_fail.load();
          while (i < cur && !first_fail.compare_exchange_weak(cur, i)) {
          }
          continue;
        }
        // Same expression as the decoder, so the two samples agree bit for bit.
        xs[i] = mp[i] + sp[i] * r.x;
        index[i] = r.index;
        lo[i] = r.index.lo;
        hi[i] = r.index.hi;
      }
    });
    if (first_fail.load() == n) data = grc::gprs_pack(index.data(), keys.data(), n, meth, bt);
  }
  const std::size_t f = first_fail.load();
  if (f != n) {
    if (status[f] == static_cast<int>(grc::Status::StepLimit))
      throw std::runtime_error("channel " + std::to_string(f) + ": " + grc::method_name(meth) +
                               " examined max_steps = " +
                               std::to_string(max_steps) + " nodes without accepting; raise max_steps");
    throw std::runtime_error("channel " + std::to_string(f) + ": " + grc::method_name(meth) +
                             " search went deeper than " +
                             std::to_string(grc::kMaxDepth) + " levels (D too large for one channel)");
  }
  py::bytes msg(reinterpret_cast<const char*>(data.data()), data.size());
  return py::make_tuple(samples, msg, index_lo, index_hi, steps, bits);
}

py::array_t<double> decode_from(const std::vector<u128>& index, const py::array& mu_p, const py::array& sigma_p,
                                uint64_t seed, uint64_t stream, grc::Split split) {
  const std::size_t n = index.size();
  const double* mp = static_cast<const double*>(mu_p.data());
  const double* sp = static_cast<const double*>(sigma_p.data());
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(mp[i]) || !std::isfinite(sp[i]) || !(sp[i] > 0.0))
      throw py::value_error("channel " + std::to_string(i) + ": mu_p must be finite and sigma_p finite and > 0");
  py::array_t<double> out(static_cast<py::ssize_t>(n));
  double* o = out.mutable_data();
  py::gil_scoped_release nogil;
  parallel_for(n, 64, 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      const uint64_t key = grc::gprs_channel_key(seed, stream, i);
      o[i] = mp[i] + sp[i] * grc::gprs_decode_one(index[i], key, split);
    }
  });
  return out;
}

py::array_t<double> gprs_decode(const py::bytes& data, const py::array& mu_p, const py::array& sigma_p,
                                uint64_t seed, uint64_t stream, int method) {
  const grc::Method meth = method_of(method);
  const std::size_t n = check_vec(mu_p, "mu_p", static_cast<std::size_t>(-1));
  check_vec(sigma_p, "sigma_p", n);
  const std::string buf = data;
  std::vector<uint64_t> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = grc::gprs_channel_key(seed, stream, i);
  grc::Unpacked u;
  {
    py::gil_scoped_release nogil;
    u = grc::gprs_unpack(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), keys.data(), n);
  }
  if (u.method != meth)
    throw FormatError(std::string("message was encoded with method (split rule) '") + grc::method_name(u.method) +
                      "', not the requested '" + grc::method_name(meth) + "'");
  return decode_from(u.index, mu_p, sigma_p, seed, stream, u.split);
}

py::array_t<double> gprs_decode_indices(const py::array& index_lo, const py::array& index_hi, const py::array& mu_p,
                                        const py::array& sigma_p, uint64_t seed, uint64_t stream, int method) {
  const grc::Split split = grc::split_of(method_of(method));
  const std::size_t n = check_vec(mu_p, "mu_p", static_cast<std::size_t>(-1));
  check_vec(sigma_p, "sigma_p", n);
  for (const auto* a : {&index_lo, &index_hi}) {
    require_array<uint64_t>(*a, "index", false);
    if (a->ndim() != 1 || static_cast<std::size_t>(a->shape(0)) != n)
      throw py::value_error("index: expected a 1-D uint64 array matching mu_p");
  }
  const uint64_t* lo = static_cast<const uint64_t*>(index_lo.data());
  const uint64_t* hi = static_cast<const uint64_t*>(index_hi.data());
  std::vector<u128> index(n);
  for (std::size_t i = 0; i < n; ++i) {
    index[i] = u128::from_words(hi[i], lo[i]);
    if (index[i] == 0 || (hi[i] >> 63) != 0)
      throw py::value_error("index " + std::to_string(i) + ": heap indices are in [1, 2**127)");
  }
  return decode_from(index, mu_p, sigma_p, seed, stream, split);
}

// S(D) and g(D) of one channel, for tests of the stretch function.
py::tuple gprs_stretch(double mu_q, double sigma_q, double mu_p, double sigma_p, const py::array& delta) {
  const std::string why = grc::gprs_check(mu_q, sigma_q, mu_p, sigma_p);
  if (!why.empty()) throw py::value_error(why);
  const std::size_t n = check_vec(delta, "delta", static_cast<std::size_t>(-1));
  const grc::GprsTarget t = grc::gprs_target(mu_q, sigma_q, mu_p, sigma_p);
  if (t.trivial) throw py::value_error("q == p: the stretch function is -log(1 - h), not tabulated");
  grc::Stretch S(t);
  const double* d = static_cast<const double*>(delta.data());
  py::array_t<double> s(static_cast<py::ssize_t>(n)), g(static_cast<py::ssize_t>(n)), h(static_cast<py::ssize_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    s.mutable_data()[i] = S(d[i]);
    g.mutable_data()[i] = S.g(d[i]);
    h.mutable_data()[i] = S.level(d[i]);
  }
  py::dict info;
  info["xstar"] = t.xstar;
  info["log_rstar"] = t.log_rstar;
  info["delta_max"] = t.delta_max;
  return py::make_tuple(s, g, h, info);
}

// int_(a, b) (r - h)_+ dP of one channel (standardised coordinates), for tests.
py::array_t<double> grc_excess(double mu_q, double sigma_q, double mu_p, double sigma_p, const py::array& a,
                               const py::array& b, const py::array& h) {
  const std::string why = grc::gprs_check(mu_q, sigma_q, mu_p, sigma_p);
  if (!why.empty()) throw py::value_error(why);
  const std::size_t n = check_vec(a, "a", static_cast<std::size_t>(-1));
  check_vec(b, "b", n);
  check_vec(h, "h", n);
  const grc::GprsTarget t = grc::gprs_target(mu_q, sigma_q, mu_p, sigma_p);
  if (t.trivial) throw py::value_error("q == p: no excess mass function");
  const double* pa = static_cast<const double*>(a.data());
  const double* pb = static_cast<const double*>(b.data());
  const double* ph = static_cast<const double*>(h.data());
  py::array_t<double> out(static_cast<py::ssize_t>(n));
  for (std::size_t i = 0; i < n; ++i) out.mutable_data()[i] = grc::grc_excess_mass(t, pa[i], pb[i], ph[i]);
  return out;
}

}  // namespace

void register_grc(py::module_& m) {
  m.def("gprs_encode", &gprs_encode, py::arg("mu_q"), py::arg("sigma_q"), py::arg("mu_p"), py::arg("sigma_p"),
        py::arg("seed"), py::arg("stream"), py::arg("method"), py::arg("max_steps"),
        "Branch-and-bound GPRS or GRC over independent 1-D Gaussian channels -> (samples, message, index_lo, "
        "index_hi, steps, bits).");
  m.def("gprs_decode", &gprs_decode, py::arg("data"), py::arg("mu_p"), py::arg("sigma_p"), py::arg("seed"),
        py::arg("stream"), py::arg("method"));
  m.def("gprs_decode_indices", &gprs_decode_indices, py::arg("index_lo"), py::arg("index_hi"), py::arg("mu_p"),
        py::arg("sigma_p"), py::arg("seed"), py::arg("stream"), py::arg("method"));
  m.def("gprs_stretch", &gprs_stretch, py::arg("mu_q"), py::arg("sigma_q"), py::arg("mu_p"), py::arg("sigma_p"),
        py::arg("delta"));
  m.def("grc_excess", &grc_excess, py::arg("mu_q"), py::arg("sigma_q"), py::arg("mu_p"), py::arg("sigma_p"),
        py::arg("a"), py::arg("b"), py::arg("h"));
}

}  // namespace bind
}  // namespace chansim

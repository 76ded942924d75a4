// Gaussian, logistic and Laplace (plain and on a dithered grid): encoder steps
// and decoder lookups through the batch kernels.
#include "param_family.h"

#include "coder_impl.h"
#include "param_kernels.h"
#include "validate.h"

namespace chansim {
namespace rans {
namespace {

// Model parameters of symbols [i, i + n) (n <= kParamBatch) after the dithered-
// grid reparameterisation, in the operation order of param_of().
void load_params(const ParamArgs& a, std::size_t i, int n, double* mean, double* scale) {
  a.mean.load(i, static_cast<std::size_t>(n), mean);
  a.scale.load(i, static_cast<std::size_t>(n), scale);
  if (!a.dithered) return;
  alignas(64) double w[kParamBatch], u[kParamBatch];
  a.width.load(i, static_cast<std::size_t>(n), w);
  a.offset.load(i, static_cast<std::size_t>(n), u);
  for (int j = 0; j < n; ++j) {
    mean[j] = mean[j] / w[j] + u[j];
    scale[j] = scale[j] / w[j];
  }
}

struct ParamModel {
  const ParamArgs& a;
  int precision;
  void (*kernel)(const double*, const double*, const uint32_t*, int, int, Lookup*);
  void lookup(std::size_t i, int n, const uint32_t* slots, Lookup* out) const {
    if (!a.dithered && a.mean.kind == RealArg::kF64 && a.scale.kind == RealArg::kF64) {  // in place
      kernel(static_cast<const double*>(a.mean.data) + i, static_cast<const double*>(a.scale.data) + i, slots, n,
             precision, out);
      return;
    }
    alignas(64) double mean[kMaxLanes], scale[kMaxLanes];
    load_params(a, i, n, mean, scale);
    kernel(mean, scale, slots, n, precision, out);
  }
};

}  // namespace

void Encoder::encode(const int32_t* symbols, std::size_t n, const ParamArgs& a) {
  check_args(n, a);
  const int p = p_.precision;
  const auto kernel = param_kernels().encode[static_cast<int>(a.shape)];
  append_blocks(n, [&](std::size_t i0, std::size_t i1, uint64_t* steps, std::vector<Payload>& pays) {
    alignas(64) double mean[kParamBatch], scale[kParamBatch];
    alignas(64) uint8_t raw[kParamBatch];
    for (std::size_t c = i0; c < i1; c += kParamBatch) {
      const int m = static_cast<int>(i1 - c < std::size_t(kParamBatch) ? i1 - c : kParamBatch);
      load_params(a, c, m, mean, scale);
      kernel(mean, scale, symbols + c, m, p, steps + (c - i0), raw);
      for (int j = 0; j < m; ++j)
        if (raw[j]) pays.push_back({c + j, static_cast<uint32_t>(symbols[c + j]), 32});
    }
  });
}

void Decoder::decode(int32_t* out, std::size_t n, const ParamArgs& a) {
  begin_call(n);
  check_args(n, a);
  const int p = header_.params.precision;
  run(ParamModel{a, p, param_kernels().lookup[static_cast<int>(a.shape)]}, n, out);
}

}  // namespace rans
}  // namespace chansim

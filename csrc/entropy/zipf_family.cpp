// Truncated Zipf family; a shared lambda builds its head table once.
#include "zipf_family.h"

#include "coder_impl.h"
#include "validate.h"

namespace chansim {
namespace rans {
namespace {

struct ZipfModel {
  const ZipfArgs& a;
  const ZipfCanon* shared;  // null when lambda varies per symbol
  int precision;
  ZipfCanon canon(std::size_t i) const {
    return shared ? *shared : zipf_canon(a.lam.at(i), static_cast<double>(a.n_max), precision);
  }
  void lookup(std::size_t i, int n, const uint32_t* slots, Lookup* out) const {
    for (int j = 0; j < n; ++j) out[j] = zipf_lookup(canon(i + j), slots[j], precision);
  }
  Lookup next(std::size_t i, int32_t e, uint32_t slot) const { return zipf_next(canon(i), e, slot, precision); }
};

}  // namespace

void Encoder::encode(const int32_t* symbols, std::size_t n, const ZipfArgs& a) {
  check_args(n, a);
  const int p = p_.precision;
  const bool shared = a.lam.kind == RealArg::kScalar;
  const ZipfCanon c0 = zipf_canon(shared ? a.lam.value : 1.0, static_cast<double>(a.n_max), p);
  append(n, [&](std::size_t i, Payload* pay) {
    return shared ? zipf_step(c0, symbols[i], p, pay)
                  : zipf_step(zipf_canon(a.lam.at(i), static_cast<double>(a.n_max), p), symbols[i], p, pay);
  });
}

void Decoder::decode(int32_t* out, std::size_t n, const ZipfArgs& a) {
  begin_call(n);
  check_args(n, a);
  const int p = header_.params.precision;
  const bool shared = a.lam.kind == RealArg::kScalar;
  const ZipfCanon c0 = zipf_canon(shared ? a.lam.value : 1.0, static_cast<double>(a.n_max), p);
  run(ZipfModel{a, shared ? &c0 : nullptr, p}, n, out);
}

}  // namespace rans
}  // namespace chansim

// Uniform integers on [low, high], any width up to the whole int32 range.
#include "uniform_family.h"

#include "coder_impl.h"
#include "validate.h"

namespace chansim {
namespace rans {
namespace {

struct UniformModel {
  const UniformArgs& a;
  int precision;
  void lookup(std::size_t i, int n, const uint32_t* slots, Lookup* out) const {
    for (int j = 0; j < n; ++j)
      out[j] = uniform_lookup(uniform_canon(a.low.at(i + j), a.high.at(i + j), precision), slots[j], precision);
  }
};

}  // namespace

void Encoder::encode(const int32_t* symbols, std::size_t n, const UniformArgs& a) {
  check_args(n, a);
  const int p = p_.precision;
  append(n, [&](std::size_t i, Payload* pay) {
    bool escape;
    return uniform_step(uniform_canon(a.low.at(i), a.high.at(i), p), symbols[i], p, &escape, &pay->bits, &pay->value);
  });
}

void Decoder::decode(int32_t* out, std::size_t n, const UniformArgs& a) {
  begin_call(n);
  check_args(n, a);
  run(UniformModel{a, header_.params.precision}, n, out);
}

}  // namespace rans
}  // namespace chansim

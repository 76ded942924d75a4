// Argument checks of the model families: the first bad element (lowest index)
// is reported as std::invalid_argument naming the argument, before anything is
// encoded or decoded. Limits are documented in docs/format.md §2.4.
#pragma once
#include <cstddef>

#include "coder.h"

namespace chansim {
namespace rans {

constexpr double kMaxLambda = 1000.0;
constexpr double kTableSumTolerance = 1e-3;

void check_args(std::size_t n, const ParamArgs& a);
void check_args(std::size_t n, const TableArgs& a, int precision);
void check_args(std::size_t n, const ZipfArgs& a);
void check_args(std::size_t n, const UniformArgs& a);

// The location-scale parameters a symbol's model is built from (after the
// dithered-grid reparameterisation, if any).
inline void param_of(const ParamArgs& a, std::size_t i, double* mean, double* scale) {
  *mean = a.mean.at(i);
  *scale = a.scale.at(i);
  if (a.dithered) {
    const double w = a.width.at(i);
    *mean = *mean / w + a.offset.at(i);
    *scale = *scale / w;
  }
}

}  // namespace rans
}  // namespace chansim

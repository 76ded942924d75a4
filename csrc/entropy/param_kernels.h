// Batch kernels of the location-scale families, one set per ISA (baseline and
// AVX2 translation units of param_kernels.inc, chosen at run time). They compute
// exactly the scalar functions of param_family.h, in loops the compiler
// vectorises, and leave the rare cases (escapes, clipped windows, a wrong
// decoder guess) to those scalar functions.
#pragma once
#include <cstdint>

#include "segment.h"

namespace chansim {
namespace rans {

// Largest batch a kernel accepts.
constexpr int kParamBatch = 256;

struct ParamKernels {
  // Steps of symbols sym[0, n) with model parameters (mean, scale) after any
  // dithered-grid reparameterisation; raw[j] is set to 1 where an escape
  // follows (its payload is the symbol itself), else 0.
  void (*encode[3])(const double* mean, const double* scale, const int32_t* sym, int n, int precision,
                    uint64_t* step, uint8_t* raw);
  // Decoder lookups of slots[0, n).
  void (*lookup[3])(const double* mean, const double* scale, const uint32_t* slot, int n, int precision,
                    Lookup* out);
};

const ParamKernels& param_kernels();  // the best set for this CPU (CHANSIM_ISA=baseline forces the baseline)

namespace kernels {
const ParamKernels& param_baseline();
#if defined(CHANSIM_HAVE_AVX2_TU)
const ParamKernels& param_avx2();
#endif
}  // namespace kernels

}  // namespace rans
}  // namespace chansim

// Per-symbol arguments of the model families as they arrive from NumPy: a
// float32 / float64 / int32 array of one value per symbol, or one value for all.
// The families read them through these views, so no argument is ever copied.
#pragma once
#include <cstddef>
#include <cstdint>

namespace chansim {
namespace rans {

struct RealArg {
  enum Kind : uint8_t { kScalar, kF32, kF64 };
  const void* data = nullptr;
  Kind kind = kScalar;
  double value = 0.0;

  static RealArg scalar(double v) { return {nullptr, kScalar, v}; }
  static RealArg f32(const float* p) { return {p, kF32, 0.0}; }
  static RealArg f64(const double* p) { return {p, kF64, 0.0}; }

  double at(std::size_t i) const {
    switch (kind) {
      case kF32: return static_cast<const float*>(data)[i];
      case kF64: return static_cast<const double*>(data)[i];
      default: return value;
    }
  }
  // Elements [i, i + n) as doubles (float32 widens exactly).
  void load(std::size_t i, std::size_t n, double* dst) const {
    switch (kind) {
      case kF32:
        for (std::size_t j = 0; j < n; ++j) dst[j] = static_cast<const float*>(data)[i + j];
        break;
      case kF64:
        for (std::size_t j = 0; j < n; ++j) dst[j] = static_cast<const double*>(data)[i + j];
        break;
      default:
        for (std::size_t j = 0; j < n; ++j) dst[j] = value;
    }
  }
};

struct IntArg {
  const int32_t* data = nullptr;  // null: every symbol uses value
  int32_t value = 0;

  static IntArg scalar(int32_t v) { return {nullptr, v}; }
  static IntArg array(const int32_t* p) { return {p, 0}; }
  int32_t at(std::size_t i) const { return data ? data[i] : value; }
};

}  // namespace rans
}  // namespace chansim

// Uniform integers on [low, high] (docs/format.md §2.8). With R = high - low + 1:
// if R <= 2^(p-1), v = k - low is coded as h = v on H = R symbols; otherwise
// v = h * 2^s + r with s = bitlen(R - 1) - (p - 1), h uniform on
// H = ((R - 1) >> s) + 1 symbols and r as s raw bits. The h symbols share
// W = 2^p - H - 1 evenly:
//   cum(h) = floor(h W / H) + h,  h in [0, H];  the escape owns [2^p - 1, 2^p).
#pragma once
#include <cstdint>

#include "cdf_search.h"
#include "common/hd.h"
#include "segment.h"

namespace chansim {
namespace rans {

struct UniformCanon {
  int64_t low;
  uint64_t R;
  uint32_t H, W;
  int shift;
};

// low <= high (checked by the caller).
CHANSIM_HD UniformCanon uniform_canon(int32_t low, int32_t high, int precision) {
  UniformCanon c;
  c.low = low;
  c.R = static_cast<uint64_t>(static_cast<int64_t>(high) - low) + 1;
  c.shift = 0;
  if (c.R > (uint64_t(1) << (precision - 1))) {
    int bits = 0;
    while ((c.R - 1) >> bits) ++bits;
    c.shift = bits - (precision - 1);
  }
  c.H = static_cast<uint32_t>(((c.R - 1) >> c.shift) + 1);
  c.W = (uint32_t(1) << precision) - c.H - 1;
  return c;
}

CHANSIM_HD uint32_t uniform_cum(const UniformCanon& c, uint64_t h) {
  return static_cast<uint32_t>(h * c.W / c.H + h);
}

// Step of symbol v; *raw_bits / *raw_value give the low part to send after it.
CHANSIM_HD uint64_t uniform_step(const UniformCanon& c, int32_t v, int precision, bool* escape, uint32_t* raw_bits,
                                 uint32_t* raw_value) {
  const int64_t d = static_cast<int64_t>(v) - c.low;
  if (d < 0 || static_cast<uint64_t>(d) >= c.R) {
    *escape = true;
    *raw_bits = 32;
    *raw_value = static_cast<uint32_t>(v);
    return pack_step((uint32_t(1) << precision) - 1, 1);
  }
  *escape = false;
  const uint64_t h = static_cast<uint64_t>(d) >> c.shift;
  *raw_bits = static_cast<uint32_t>(c.shift);
  *raw_value = static_cast<uint32_t>(static_cast<uint64_t>(d) & ((uint64_t(1) << c.shift) - 1));
  const uint32_t c0 = uniform_cum(c, h);
  return pack_step(c0, uniform_cum(c, h + 1) - c0);
}

CHANSIM_HD Lookup uniform_lookup(const UniformCanon& c, uint32_t slot, int precision) {
  if (slot >= (uint32_t(1) << precision) - 1) return {slot, 1, 0, 32, kEscape};
  // cum(h) ~ h 2^p / H: the quotient is exact or one too high.
  int64_t h = static_cast<int64_t>((static_cast<uint64_t>(slot) * c.H) >> precision);
  h = h < static_cast<int64_t>(c.H) - 1 ? h : static_cast<int64_t>(c.H) - 1;
  const auto cum = [&c](int64_t j) { return uniform_cum(c, static_cast<uint64_t>(j)); };
  if (slot < cum(h) || slot >= cum(h + 1)) h = cdf_search(0, static_cast<int64_t>(c.H) - 1, h, slot, cum);
  const uint32_t c0 = cum(h);
  const uint32_t value = static_cast<uint32_t>(c.low) + (static_cast<uint32_t>(h) << c.shift);
  return {c0, cum(h + 1) - c0, static_cast<int32_t>(value), static_cast<uint8_t>(c.shift),
          c.shift ? kAddRaw : kPlain};
}

}  // namespace rans
}  // namespace chansim

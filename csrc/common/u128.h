// A 128-bit unsigned integer as two 64-bit words, for the GPRS/GRC heap index
// (H < 2^127, docs/format.md §4) and the generic bit codes that carry it
// (entropy/elias.h, bitio.h).
//
// Why not `unsigned __int128`: MSVC has no such type, and a type chosen per
// compiler would leave the Windows branch untested on the machines that run
// the tests. This struct is the only 128-bit type on every platform, so every
// GCC/Clang test run exercises the code the Windows wheel runs. The index is
// only ever shifted, masked and compared (no arithmetic: a child is
// (H << 1) | side), so no 64x64->128 product or carry is needed, and each
// operation is a few word operations — nothing next to the Philox block each
// node draws.
//
// Semantics are those of unsigned __int128 for the operations provided
// (tests/cpp/test_u128.cpp checks them against it): conversion from any
// integer (signed values sign-extend, like the built-in), explicit conversion
// to a smaller integer (truncating) and to bool (nonzero), shifts by
// 0 <= n < 128 (larger n is undefined there; here it is asserted in debug
// builds), |, & and comparisons. The in-memory word order is irrelevant: no
// format stores a u128 by memcpy (gprs.cpp writes it bit by bit, the bindings
// as two uint64).
#pragma once
#include <cassert>
#include <cstdint>
#include <type_traits>

namespace chansim {

struct u128 {
  uint64_t hi = 0, lo = 0;

  constexpr u128() = default;
  // Implicit, like the built-in's integer conversions, so `u128 h = 1` and
  // `x & 1u` read as they would with unsigned __int128.
  template <class T, std::enable_if_t<std::is_integral<T>::value, int> = 0>
  constexpr u128(T v) : hi(sign_word(v)), lo(static_cast<uint64_t>(v)) {}
  static constexpr u128 from_words(uint64_t hi_word, uint64_t lo_word) {
    u128 r;
    r.hi = hi_word;
    r.lo = lo_word;
    return r;
  }

  explicit constexpr operator bool() const { return (hi | lo) != 0; }
  // Truncation to the low bits, as static_cast<uint64_t>(unsigned __int128).
  template <class T, std::enable_if_t<std::is_integral<T>::value && !std::is_same<T, bool>::value, int> = 0>
  explicit constexpr operator T() const {
    return static_cast<T>(lo);
  }

  friend constexpr u128 operator<<(u128 v, int n) {
    assert(n >= 0 && n < 128);
    // n == 0 and n >= 64 are separate: a 64-bit shift by 64 is undefined.
    if (n == 0) return v;
    if (n < 64) return from_words((v.hi << n) | (v.lo >> (64 - n)), v.lo << n);
    return from_words(v.lo << (n - 64), 0);
  }
  friend constexpr u128 operator>>(u128 v, int n) {
    assert(n >= 0 && n < 128);
    if (n == 0) return v;
    if (n < 64) return from_words(v.hi >> n, (v.lo >> n) | (v.hi << (64 - n)));
    return from_words(0, v.hi >> (n - 64));
  }
  constexpr u128& operator<<=(int n) { return *this = *this << n; }
  constexpr u128& operator>>=(int n) { return *this = *this >> n; }

  friend constexpr u128 operator|(u128 a, u128 b) { return from_words(a.hi | b.hi, a.lo | b.lo); }
  friend constexpr u128 operator&(u128 a, u128 b) { return from_words(a.hi & b.hi, a.lo & b.lo); }

  friend constexpr bool operator==(u128 a, u128 b) { return a.hi == b.hi && a.lo == b.lo; }
  friend constexpr bool operator!=(u128 a, u128 b) { return !(a == b); }
  friend constexpr bool operator<(u128 a, u128 b) { return a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo; }
  friend constexpr bool operator>(u128 a, u128 b) { return b < a; }
  friend constexpr bool operator<=(u128 a, u128 b) { return !(b < a); }
  friend constexpr bool operator>=(u128 a, u128 b) { return !(a < b); }

 private:
  template <class T>
  static constexpr uint64_t sign_word(T v) {
    if constexpr (std::is_signed<T>::value) return v < 0 ? ~uint64_t{0} : 0;
    else return 0;
  }
};

}  // namespace chansim

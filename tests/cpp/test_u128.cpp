// The portable 128-bit index type (common/u128.h) against unsigned __int128,
// on edge values (0, 1, 2^64 - 1, 2^64, 2^127, 2^128 - 1, words that differ in
// one half only) and random ones, for every shift count 0..127; and the
// generic bit codes (Elias delta, put_bits) emit the same bits for both types.
//
// u128 is a struct on every compiler (no per-compiler branch), so this test
// and every GPRS/GRC test exercise the code the MSVC (Windows) build runs.
// Where the compiler has no unsigned __int128 (MSVC), only the closed-form
// checks run.
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "check.h"
#include "common/u128.h"
#include "entropy/bitio.h"
#include "entropy/elias.h"

using namespace chansim;

static_assert(std::is_class<u128>::value, "u128 must be the portable two-word struct, never the built-in");
static_assert(std::is_trivially_copyable<u128>::value, "u128 is passed and stored by value");
static_assert((u128(1) << 64).hi == 1 && (u128(1) << 64).lo == 0, "shift across the word boundary");
static_assert((u128::from_words(1, 0) >> 1).lo == (uint64_t{1} << 63), "shift back across it");
static_assert(u128(-1).hi == ~uint64_t{0}, "signed values sign-extend, as for unsigned __int128");

namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr uint64_t kOnes = ~uint64_t{0};

std::vector<u128> test_values() {
  std::vector<u128> v = {
      u128(0),
      u128(1),
      u128(2),
      u128(3),
      u128(uint64_t{1} << 63),
      u128(kOnes - 1),
      u128(kOnes),                       // 2^64 - 1
      u128::from_words(1, 0),            // 2^64
      u128::from_words(1, 1),
      u128::from_words(1, kOnes),
      u128::from_words(uint64_t{1} << 62, 0),
      u128::from_words(kOnes >> 1, kOnes),  // 2^127 - 1
      u128::from_words(uint64_t{1} << 63, 0),  // 2^127
      u128::from_words(uint64_t{1} << 63, 1),
      u128::from_words(kOnes, 0),
      u128::from_words(kOnes, kOnes - 1),
      u128::from_words(kOnes, kOnes),        // 2^128 - 1
      u128::from_words(0x0123456789ABCDEFull, 0xFEDCBA9876543210ull),
  };
  uint64_t s = 42;
  for (int i = 0; i < 3000; ++i) {
    const uint64_t hi = splitmix64(s);  // sequenced: same values on every compiler
    u128 x = u128::from_words(hi, splitmix64(s));
    // All magnitudes, not only full-width words: drop a random number of top bits.
    const int drop = static_cast<int>(splitmix64(s) % 128);
    if (i % 2) x = x >> drop;
    v.push_back(x);
  }
  return v;
}

// Checks that need no reference type: each operation against its definition
// on the two words. These are what an MSVC build of this test checks.
int closed_form_checks(const std::vector<u128>& vals) {
  int cases = 0;
  for (int n = 0; n < 128; ++n) {
    const u128 one = u128(1) << n;
    CHECK(one.hi == (n >= 64 ? uint64_t{1} << (n - 64) : 0));
    CHECK(one.lo == (n < 64 ? uint64_t{1} << n : 0));
    CHECK((one >> n) == u128(1));
    const u128 ones = u128::from_words(kOnes, kOnes) >> n;  // 2^(128 - n) - 1
    CHECK(ones.hi == (n >= 64 ? 0 : kOnes >> n));
    CHECK(ones.lo == (n > 64 ? kOnes >> (n - 64) : kOnes));
    cases += 5;
  }
  for (const u128 x : vals) {
    for (int n = 0; n < 128; ++n) {
      // Shifting out and back clears exactly the bits shifted out.
      const u128 all = u128::from_words(kOnes, kOnes);
      CHECK(((x << n) >> n) == (x & (all >> n)));
      CHECK(((x >> n) << n) == (x & (all << n)));
      cases += 2;
    }
    CHECK(u128::from_words(x.hi, x.lo) == x);
    CHECK(static_cast<bool>(x) == (x.hi != 0 || x.lo != 0));
    CHECK(static_cast<uint64_t>(x) == x.lo);
    cases += 3;
  }
  for (std::size_t i = 0; i + 1 < vals.size(); ++i) {
    const u128 a = vals[i], b = vals[i + 1];
    const bool lt = a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
    CHECK((a < b) == lt);
    CHECK((a > b) == (b < a));
    CHECK((a == b) == (a.hi == b.hi && a.lo == b.lo));
    CHECK((a | b).hi == (a.hi | b.hi) && (a | b).lo == (a.lo | b.lo));
    CHECK((a & b).hi == (a.hi & b.hi) && (a & b).lo == (a.lo & b.lo));
    cases += 5;
  }
  return cases;
}

}  // namespace

#if defined(__SIZEOF_INT128__)
namespace {

using ref128 = unsigned __int128;
ref128 ref(u128 x) { return (static_cast<ref128>(x.hi) << 64) | x.lo; }
bool same(u128 x, ref128 r) { return x.hi == static_cast<uint64_t>(r >> 64) && x.lo == static_cast<uint64_t>(r); }

template <class UInt>
std::string elias_bits(const std::vector<UInt>& vals) {
  std::string s;
  for (const UInt& v : vals) elias_delta_put(v, [&s](unsigned b) { s += b ? '1' : '0'; });
  return s;
}

int reference_checks(const std::vector<u128>& vals) {
  int cases = 0;
  // Conversions from integers of every kind, negative ones included.
  for (const long long v : {0LL, 1LL, -1LL, -2LL, 12345LL, -9223372036854775807LL - 1, 9223372036854775807LL}) {
    CHECK(same(u128(v), static_cast<ref128>(v)));
    CHECK(same(u128(static_cast<int>(v)), static_cast<ref128>(static_cast<int>(v))));
    CHECK(same(u128(static_cast<uint64_t>(v)), static_cast<ref128>(static_cast<uint64_t>(v))));
    cases += 3;
  }
  CHECK(same(u128(true), static_cast<ref128>(true)) && same(u128(static_cast<unsigned char>(200)), 200));
  ++cases;
  for (const u128 x : vals) {
    const ref128 r = ref(x);
    for (int n = 0; n < 128; ++n) {
      CHECK(same(x << n, r << n));
      CHECK(same(x >> n, r >> n));
      u128 y = x;
      y <<= n;
      CHECK(same(y, r << n));
      y = x;
      y >>= n;
      CHECK(same(y, r >> n));
      cases += 4;
    }
    CHECK(static_cast<bool>(x) == static_cast<bool>(r));
    CHECK(static_cast<uint64_t>(x) == static_cast<uint64_t>(r));
    CHECK(static_cast<uint32_t>(x) == static_cast<uint32_t>(r));
    CHECK(static_cast<unsigned>(x & 1u) == static_cast<unsigned>(r & 1u));
    CHECK(floor_log2(x) == floor_log2(r));
    // The heap-index step of GPRS/GRC: child 2H + side.
    if (!(x.hi >> 63))
      for (unsigned side = 0; side < 2; ++side) CHECK(same((x << 1) | side, r * 2 + side));
    cases += 7;
  }
  // Every ordered pair of the edge values (the first 18), then random pairs,
  // including pairs equal in one word only.
  uint64_t s = 7;
  std::vector<std::pair<u128, u128>> pairs;
  for (std::size_t i = 0; i < 18; ++i)
    for (std::size_t j = 0; j < 18; ++j) pairs.emplace_back(vals[i], vals[j]);
  for (int k = 0; k < 20000; ++k) {
    const u128 a = vals[splitmix64(s) % vals.size()];
    u128 b = vals[splitmix64(s) % vals.size()];
    if (k % 3 == 1) b.hi = a.hi;
    if (k % 3 == 2) b.lo = a.lo;
    pairs.emplace_back(a, b);
  }
  for (const auto& p : pairs) {
    const u128 a = p.first, b = p.second;
    const ref128 ra = ref(a), rb = ref(b);
    CHECK(same(a | b, ra | rb));
    CHECK(same(a & b, ra & rb));
    CHECK((a == b) == (ra == rb));
    CHECK((a != b) == (ra != rb));
    CHECK((a < b) == (ra < rb));
    CHECK((a > b) == (ra > rb));
    CHECK((a <= b) == (ra <= rb));
    CHECK((a >= b) == (ra >= rb));
    cases += 8;
  }
  // The generic bit codes give the same bits for both types (heap indices are
  // in [1, 2^127)), and decode back.
  std::vector<u128> idx;
  std::vector<ref128> ridx;
  for (const u128 x : vals) {
    const u128 h = x >> 1;
    if (!h) continue;
    idx.push_back(h);
    ridx.push_back(ref(h));
  }
  const std::string bits = elias_bits(idx);
  CHECK(bits == elias_bits(ridx));
  std::size_t pos = 0;
  for (std::size_t i = 0; i < idx.size(); ++i) {
    u128 got;
    CHECK(elias_delta_get([&]() { return static_cast<unsigned>(bits.at(pos++) == '1'); }, 126, &got));
    CHECK(got == idx[i]);
    CHECK(elias_delta_bits(idx[i]) == elias_delta_bits(ridx[i]));
    cases += 3;
  }
  std::vector<uint8_t> out_a, out_b;
  BitWriter wa{out_a}, wb{out_b};
  for (std::size_t i = 0; i < idx.size(); ++i) {
    wa.put_bits(idx[i], 127);
    wb.put_bits(ridx[i], 127);
  }
  CHECK(out_a == out_b);
  cases += 2;
  std::printf("reference checks against unsigned __int128: %d\n", cases);
  return cases;
}

}  // namespace
#endif

int main() {
  const std::vector<u128> vals = test_values();
  int cases = closed_form_checks(vals);
  std::printf("closed-form checks: %d\n", cases);
#if defined(__SIZEOF_INT128__)
  cases += reference_checks(vals);
#else
  std::printf("no unsigned __int128 on this compiler: reference checks skipped\n");
#endif
  std::printf("%zu values, %d checks\n", vals.size(), cases);
  return chansim_test::finish("test_u128");
}

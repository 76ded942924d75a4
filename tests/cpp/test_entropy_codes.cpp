// The small bit-level codes of csrc/entropy (bitio.h, arith.h, elias.h,
// crc32.h) against known answers and round trips.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "common/u128.h"
#include "entropy/arith.h"
#include "entropy/bitio.h"
#include "entropy/crc32.h"
#include "entropy/elias.h"

using namespace chansim;

namespace {

std::string bits_of(const std::vector<uint8_t>& out, uint64_t nbits) {
  std::string s;
  for (uint64_t k = 0; k < nbits; ++k) s += ((out[k >> 3] >> (7 - (k & 7))) & 1) ? '1' : '0';
  return s;
}

void test_crc32() {
  const char* check = "123456789";
  CHECK(crc32(reinterpret_cast<const uint8_t*>(check), 9) == 0xCBF43926u);
  CHECK(crc32(nullptr, 0) == 0u);
}

void test_elias() {
  // Elias (1975) delta codes.
  const struct {
    uint64_t v;
    const char* code;
  } known[] = {{1, "1"}, {2, "0100"}, {3, "0101"}, {4, "01100"}, {7, "01111"}, {8, "00100000"}, {17, "001010001"}};
  for (const auto& k : known) {
    std::vector<uint8_t> out;
    BitWriter w{out};
    elias_delta_put(k.v, [&w](unsigned b) { w.put(b); });
    CHECK(bits_of(out, w.nbits) == k.code);
    CHECK(elias_delta_bits(k.v) == static_cast<int>(w.nbits));
  }
  // Round trip, 128-bit values (the portable common/u128.h) included, and the bound.
  std::vector<u128> vals = {1, 2, 5, 1000, (u128(1) << 100) | 12345, u128(1) << 126};
  std::vector<uint8_t> out;
  BitWriter w{out};
  for (u128 v : vals) elias_delta_put(v, [&w](unsigned b) { w.put(b); });
  BitReader r(out.data(), w.nbits, "truncated");
  for (u128 v : vals) {
    u128 got = 0;
    CHECK(elias_delta_get([&r]() { return r.get(); }, 126, &got));
    CHECK(got == v);
  }
  CHECK(r.pos == w.nbits);
  // floor(log2 v) = 127 > 126 is refused.
  std::vector<uint8_t> big;
  BitWriter wb{big};
  elias_delta_put(u128(1) << 127, [&wb](unsigned b) { wb.put(b); });
  BitReader rb(big.data(), wb.nbits, "truncated");
  u128 got = 0;
  CHECK(!elias_delta_get([&rb]() { return rb.get(); }, 126, &got));
  // Reading past the end throws FormatError with the caller's message.
  BitReader rt(out.data(), 3, "the message");
  bool threw = false;
  try {
    for (int i = 0; i < 4; ++i) rt.get();
  } catch (const FormatError& e) {
    threw = std::string(e.what()) == "the message";
  }
  CHECK(threw);
}

void test_arith() {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 5000);
    std::vector<unsigned> bits(n);
    std::vector<uint32_t> p0(n);
    double ideal = 0;
    for (int i = 0; i < n; ++i) {
      p0[i] = 1 + static_cast<uint32_t>(rng() % 65535);
      bits[i] = (rng() % 65536) >= p0[i] ? 1u : 0u;
      ideal -= std::log2((bits[i] ? 65536.0 - p0[i] : static_cast<double>(p0[i])) / 65536.0);
    }
    std::vector<uint8_t> out = {0xAB};  // a prefix the coder must leave alone
    BitWriter w{out, 8};
    ArithEncoder enc{w};
    for (int i = 0; i < n; ++i) enc.encode(bits[i], p0[i]);
    enc.finish();
    CHECK(out[0] == 0xAB);
    // Within 2 bits of the ideal length, plus the 16-bit split rounding (< 1e-3 bit per bit).
    CHECK(static_cast<double>(w.nbits - 8) <= ideal + 2.0 + 1e-3 * n);
    BitReader r(out.data() + 1, (out.size() - 1) * 8, "truncated");
    ArithDecoder dec(r);
    bool same = true;
    for (int i = 0; i < n; ++i) same = same && dec.decode(p0[i]) == bits[i];
    CHECK(same);
  }
}

}  // namespace

int main() {
  test_crc32();
  test_elias();
  test_arith();
  return chansim_test::finish("test_entropy_codes");
}

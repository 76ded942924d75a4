// MSB-first bit I/O, the transport of the small bit-level codes (arith.h,
// elias.h).
//
// Contract
//  * Order: stream bit k is bit 7 - (k mod 8) of byte k / 8 (most significant
//    bit first); BitWriter zero-pads the last byte.
//  * BitWriter appends to a caller-owned std::vector<uint8_t> (which may
//    already hold a header); put_bits writes the low `count` bits of any
//    unsigned integer type (128-bit included), most significant first.
//  * BitReader reads [p, p + size_bits / 8) in the same order and never past
//    size_bits: get() there throws chansim::FormatError with the caller's
//    message (the data is truncated). `pos` is the number of bits read.
#pragma once
#include <cstdint>
#include <vector>

#include "common/errors.h"

namespace chansim {

struct BitWriter {
  std::vector<uint8_t>& out;
  uint64_t nbits = 0;
  void put(unsigned bit) {
    if ((nbits & 7) == 0) out.push_back(0);
    if (bit) out.back() |= static_cast<uint8_t>(0x80u >> (nbits & 7));
    ++nbits;
  }
  template <class UInt>
  void put_bits(UInt v, int count) {
    for (int i = count - 1; i >= 0; --i) put(static_cast<unsigned>((v >> i) & 1u));
  }
};

struct BitReader {
  const uint8_t* p;
  uint64_t size_bits;
  const char* truncated;  // the FormatError message for a read past the end
  uint64_t pos = 0;
  BitReader(const uint8_t* data, uint64_t bits, const char* truncated_message)
      : p(data), size_bits(bits), truncated(truncated_message) {}
  bool at_end() const { return pos >= size_bits; }
  unsigned get() {
    if (pos >= size_bits) throw FormatError(truncated);
    const unsigned b = (p[pos >> 3] >> (7 - (pos & 7))) & 1u;
    ++pos;
    return b;
  }
};

}  // namespace chansim

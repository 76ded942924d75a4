// Binary arithmetic coder with 16-bit probabilities (Witten, Neal & Cleary
// 1987): 32-bit low/high, deferred ("pending") bits, integer arithmetic only,
// so encoder and decoder agree bit for bit on every machine.
//
// Contract
//  * Probabilities: p0 = P(bit == 0) * 2^16 in [1, 65535]. After every
//    renormalisation high - low + 1 > 2^30, so both sub-ranges of any such p0
//    are non-empty and every bit stays decodable.
//  * Encoder: encode(bit, p0) per bit, then finish() once; the bits go to a
//    BitWriter (bitio.h), which may hold other codes before them. The code is
//    within a few bits of sum -log2 P(coded bit) (the flush adds 2 bits plus
//    any pending ones; tests/cpp/test_grc.cpp bounds it).
//  * Decoder: the same p0 sequence in the same order returns the same bits.
//    It preloads 32 bits and, past the end of its BitReader, reads zeros (the
//    flush leaves the value determined by the bits written): it never throws,
//    so a caller vouches for the data otherwise (a CRC) and may reject unread
//    trailing bytes by comparing BitReader::pos with the data's length.
#pragma once
#include <cstdint>

#include "bitio.h"

namespace chansim {

struct ArithRange {
  static constexpr uint64_t kTop = 0xFFFFFFFFull, kHalf = 0x80000000ull, kQuarter = 0x40000000ull;
};

struct ArithEncoder {
  BitWriter& w;
  uint64_t low = 0, high = ArithRange::kTop, pending = 0;
  explicit ArithEncoder(BitWriter& writer) : w(writer) {}
  void encode(unsigned bit, uint32_t p0) {
    const uint64_t range = high - low + 1;
    const uint64_t split = low + ((range * p0) >> 16) - 1;
    if (bit) low = split + 1;
    else high = split;
    for (;;) {
      if (high < ArithRange::kHalf) {
        emit(0);
      } else if (low >= ArithRange::kHalf) {
        emit(1);
        low -= ArithRange::kHalf;
        high -= ArithRange::kHalf;
      } else if (low >= ArithRange::kQuarter && high < ArithRange::kHalf + ArithRange::kQuarter) {
        ++pending;
        low -= ArithRange::kQuarter;
        high -= ArithRange::kQuarter;
      } else {
        break;
      }
      low <<= 1;
      high = (high << 1) | 1;
    }
  }
  void finish() {
    ++pending;
    emit(low < ArithRange::kQuarter ? 0 : 1);
  }

 private:
  void emit(unsigned bit) {
    w.put(bit);
    for (; pending; --pending) w.put(bit ^ 1u);
  }
};

struct ArithDecoder {
  BitReader& r;
  uint64_t low = 0, high = ArithRange::kTop, value = 0;
  explicit ArithDecoder(BitReader& reader) : r(reader) {
    for (int i = 0; i < 32; ++i) value = (value << 1) | next();
  }
  unsigned decode(uint32_t p0) {
    const uint64_t range = high - low + 1;
    const uint64_t split = low + ((range * p0) >> 16) - 1;
    unsigned bit;
    if (value <= split) {
      bit = 0;
      high = split;
    } else {
      bit = 1;
      low = split + 1;
    }
    for (;;) {
      if (high < ArithRange::kHalf) {
      } else if (low >= ArithRange::kHalf) {
        low -= ArithRange::kHalf;
        high -= ArithRange::kHalf;
        value -= ArithRange::kHalf;
      } else if (low >= ArithRange::kQuarter && high < ArithRange::kHalf + ArithRange::kQuarter) {
        low -= ArithRange::kQuarter;
        high -= ArithRange::kQuarter;
        value -= ArithRange::kQuarter;
      } else {
        break;
      }
      low <<= 1;
      high = (high << 1) | 1;
      value = (value << 1) | next();
    }
    return bit;
  }

 private:
  unsigned next() { return r.at_end() ? 0u : r.get(); }
};

}  // namespace chansim

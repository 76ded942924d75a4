#include "format.h"

#include <algorithm>
#include <string>

#include "rans.h"

namespace chansim {
namespace rans {
namespace {

void put_varint(uint64_t v, std::vector<uint8_t>& out) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

// LEB128, at most 10 bytes, no overlong trailing zero groups beyond 64 bits.
uint64_t get_varint(const uint8_t* data, std::size_t size, std::size_t& pos, const char* what) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= size) throw FormatError(std::string("rANS stream truncated in ") + what);
    const uint8_t b = data[pos++];
    if (shift == 63 && (b & 0x7e)) throw FormatError(std::string("rANS stream: ") + what + " overflows 64 bits");
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  throw FormatError(std::string("rANS stream: ") + what + " is not a valid varint");
}

}  // namespace

void validate_params(const StreamParams& p) {
  if (p.precision < kMinPrecision || p.precision > kMaxPrecision)
    throw std::invalid_argument("precision must be in [" + std::to_string(kMinPrecision) + ", " +
                                std::to_string(kMaxPrecision) + "], got " + std::to_string(p.precision));
  if (p.lanes < 1 || p.lanes > kMaxLanes)
    throw std::invalid_argument("lanes must be in [1, " + std::to_string(kMaxLanes) + "], got " +
                                std::to_string(p.lanes));
  if (p.segment_log2 < kMinSegmentLog2 || p.segment_log2 > kMaxSegmentLog2)
    throw std::invalid_argument("segment size must be a power of two in [2**" + std::to_string(kMinSegmentLog2) +
                                ", 2**" + std::to_string(kMaxSegmentLog2) + "]");
}

uint64_t segment_count(uint64_t n, int segment_log2) {
  const uint64_t s = uint64_t(1) << segment_log2;
  return n / s + (n % s != 0);
}

uint64_t segment_begin(uint64_t k, uint64_t n, uint64_t nseg) {
  // floor(k n / nseg) without a 128-bit product: k n = k q nseg + k r with
  // n = q nseg + r, and k <= nseg <= 2^28 (n <= 2^40 symbols, segments of at
  // least 2^12), so k r < 2^56.
  const uint64_t q = n / nseg, r = n % nseg;
  return k * q + (k * r) / nseg;
}

SegmentShape segment_shape(uint64_t m, int lanes) {
  const uint64_t tail_begin = m - std::min(m, kTailSymbols);
  const int used = tail_begin == 0 ? 1 : static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(lanes), tail_begin));
  return {tail_begin, used};
}

Header parse_header(const uint8_t* data, std::size_t size) {
  if (size < 6) throw FormatError("rANS stream truncated: " + std::to_string(size) + " bytes is shorter than a header");
  if (data[0] != kMagic0 || data[1] != kMagic1) throw FormatError("not a chansim rANS stream (bad magic)");
  if (data[2] != kVersion)
    throw FormatError("rANS stream version " + std::to_string(data[2]) + " is not supported (this build reads " +
                      std::to_string(kVersion) + ")");
  Header h;
  h.params.precision = data[3];
  h.params.lanes = data[4];
  h.params.segment_log2 = data[5];
  try {
    validate_params(h.params);
  } catch (const std::invalid_argument& e) {
    throw FormatError(std::string("rANS stream header: ") + e.what());
  }
  std::size_t pos = 6;
  h.n = get_varint(data, size, pos, "symbol count");
  if (h.n > kMaxSymbols) throw FormatError("rANS stream header: symbol count exceeds 2**40");
  const uint64_t nseg = segment_count(h.n, h.params.segment_log2);
  // Each segment holds at least one byte and each table entry one, so a count
  // the data cannot back is rejected before the table is allocated.
  if (nseg > size - pos) throw FormatError("rANS stream truncated: too short for its segment table");
  std::vector<uint64_t> lengths;
  lengths.reserve(nseg);
  uint64_t total = 0;
  for (uint64_t k = 0; k + 1 < nseg; ++k) {
    const uint64_t len = get_varint(data, size, pos, "segment table");
    if (len == 0 || len > size) throw FormatError("rANS stream: invalid segment length");
    total += len;
    if (total > size) throw FormatError("rANS stream truncated: segments exceed the data");
    lengths.push_back(len);
  }
  if (nseg > 0) {
    if (total >= size - pos) throw FormatError("rANS stream truncated: last segment missing");
    lengths.push_back(size - pos - total);
  } else if (pos != size) {
    throw FormatError("rANS stream: trailing bytes after an empty stream");
  }
  h.segment_offsets.resize(nseg + 1);
  h.segment_offsets[0] = pos;
  for (uint64_t k = 0; k < nseg; ++k) h.segment_offsets[k + 1] = h.segment_offsets[k] + lengths[k];
  return h;
}

void write_header(const StreamParams& p, uint64_t n, const std::vector<std::size_t>& segment_sizes,
                  std::vector<uint8_t>& out) {
  out.push_back(kMagic0);
  out.push_back(kMagic1);
  out.push_back(kVersion);
  out.push_back(static_cast<uint8_t>(p.precision));
  out.push_back(static_cast<uint8_t>(p.lanes));
  out.push_back(static_cast<uint8_t>(p.segment_log2));
  put_varint(n, out);
  for (std::size_t k = 0; k + 1 < segment_sizes.size(); ++k) put_varint(segment_sizes[k], out);
}

}  // namespace rans
}  // namespace chansim

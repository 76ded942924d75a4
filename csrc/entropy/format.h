// The rANS stream container (docs/format.md §2): header, segment table and the
// geometry of segments. Parsing validates every count against the data length
// before anything is allocated.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "common/errors.h"

namespace chansim {
namespace rans {

constexpr uint8_t kMagic0 = 'r', kMagic1 = 'A';
constexpr uint8_t kVersion = 1;
constexpr int kMaxLanes = 32;
constexpr int kMinSegmentLog2 = 12;
constexpr int kMaxSegmentLog2 = 30;
constexpr uint64_t kMaxSymbols = uint64_t(1) << 40;
// The last kTailSymbols symbols of a segment go to lane 0 alone; their words
// seed the other lanes' initial states (see segment.h).
constexpr uint64_t kTailSymbols = 4096;
// Raw payloads (escaped values, wide uniform ranges) move in chunks of this many bits.
constexpr int kRawChunkBits = 16;

struct StreamParams {
  int precision = 24;
  int lanes = 8;
  int segment_log2 = 19;
};

void validate_params(const StreamParams& p);  // std::invalid_argument

// Segment k of n symbols covers [begin(k), begin(k + 1)): ceil(n / 2^log2)
// segments of balanced sizes, a function of n and log2 only.
uint64_t segment_count(uint64_t n, int segment_log2);
uint64_t segment_begin(uint64_t k, uint64_t n, uint64_t nseg);

// Lanes a segment of m symbols uses, and where its single-lane tail begins.
struct SegmentShape {
  uint64_t tail_begin;
  int lanes;
};
SegmentShape segment_shape(uint64_t m, int lanes);

struct Header {
  StreamParams params;
  uint64_t n = 0;
  std::vector<uint64_t> segment_offsets;  // nseg + 1 byte offsets into the data
};

// Parses and validates the header of data[0, size); throws chansim::FormatError.
Header parse_header(const uint8_t* data, std::size_t size);

// Appends the header for n symbols and the given segment sizes to out.
void write_header(const StreamParams& p, uint64_t n, const std::vector<std::size_t>& segment_sizes,
                  std::vector<uint8_t>& out);

}  // namespace rans
}  // namespace chansim

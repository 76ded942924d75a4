#include "segment.h"

#include <memory>
#include <string>

#include "common/bits.h"

namespace chansim {
namespace rans {
namespace {

// Final states are flushed as a little-endian bit string: per lane its bit
// length b, then the low b - 1 bits (the top bit is implicit). Lanes of a
// segment with interleaved symbols are in the normal regime, b in [32, 63],
// sent as b - 32 in 5 bits; a tail-only segment sends b in [1, 63] in 6 bits.
class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>& out) : out_(out) {}
  void put(uint64_t v, int bits) {
    for (int i = 0; i < bits; ++i) {
      if (used_ == 0) out_.push_back(0);
      out_.back() = static_cast<uint8_t>(out_.back() | (((v >> i) & 1u) << used_));
      used_ = (used_ + 1) & 7;
    }
  }

 private:
  std::vector<uint8_t>& out_;
  int used_ = 0;
};

class BitReader {
 public:
  BitReader(const uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  uint64_t get(int bits) {
    uint64_t v = 0;
    for (int i = 0; i < bits; ++i, ++bit_) {
      if (bit_ >= 8 * size_) throw FormatError("rANS stream truncated in a segment's final states");
      v |= static_cast<uint64_t>((data_[bit_ >> 3] >> (bit_ & 7)) & 1u) << i;
    }
    return v;
  }
  std::size_t bytes_used() const { return (bit_ + 7) >> 3; }

 private:
  const uint8_t* data_;
  std::size_t size_;
  std::size_t bit_ = 0;
};

int bit_length(uint64_t x) { return bit_length64(x); }

class SegmentEncoder {
 public:
  SegmentEncoder(const uint64_t* steps, uint64_t m, const Payload* pay, std::size_t npay, int precision)
      : steps_(steps), pay_(pay), npay_(npay), precision_(precision) {
    // Each coding step emits at most one word: the symbols' steps, a second
    // interval and up to two raw chunks per payload.
    words_.reset(new uint32_t[m + 3 * npay + 1]);
  }

  // Codes symbols [begin, end) backwards over `lanes` interleaved states,
  // symbol i on lane i mod lanes.
  void encode(uint64_t begin, uint64_t end, uint64_t* x, int lanes) {
    int lane = static_cast<int>((end - 1) % static_cast<uint64_t>(lanes));
    for (uint64_t i = end; i-- > begin;) {
      uint64_t& s = x[lane];
      lane = lane == 0 ? lanes - 1 : lane - 1;
      const uint64_t step = steps_[i];
      if (step & kPayloadFlag) {
        while (pay_next_ > 0 && pay_[pay_next_ - 1].index > i) --pay_next_;
        const Payload& r = pay_[pay_next_ - 1];
        // In reverse of the decoding order: raw chunks high to low, the second
        // interval, then (below) the first.
        const int nchunks = (static_cast<int>(r.bits) + kRawChunkBits - 1) / kRawChunkBits;
        for (int c = nchunks - 1; c >= 0; --c) {
          const int shift = c * kRawChunkBits;
          const int bits = static_cast<int>(r.bits) - shift < kRawChunkBits ? static_cast<int>(r.bits) - shift
                                                                              : kRawChunkBits;
          const uint32_t chunk = (r.value >> shift) & ((uint32_t(1) << bits) - 1);
          put(s, {chunk << (precision_ - bits), uint32_t(1) << (precision_ - bits)});
        }
        if (r.next_freq) put(s, {r.next_start, r.next_freq});
      }
      put(s, {static_cast<uint32_t>(step), static_cast<uint32_t>((step >> 32) & 0x7fffffffu)});
    }
  }
  void restart() {
    nwords_ = 0;
    pay_next_ = npay_;
  }
  std::size_t size() const { return nwords_; }
  uint32_t pop() { return words_[--nwords_]; }
  const uint32_t* words() const { return words_.get(); }

 private:
  void put(uint64_t& x, Interval iv) {
    encode_step(x, iv, precision_, [this](uint32_t w) { words_[nwords_++] = w; });
  }
  const uint64_t* steps_;
  const Payload* pay_;
  std::size_t npay_;
  std::size_t pay_next_ = npay_;
  int precision_;
  std::unique_ptr<uint32_t[]> words_;  // in emission order (uninitialised: every word read is written first)
  std::size_t nwords_ = 0;
};

}  // namespace

std::vector<uint8_t> encode_segment(const uint64_t* steps, uint64_t m, const Payload* pay, std::size_t npay,
                                    const StreamParams& p) {
  const SegmentShape shape = segment_shape(m, p.lanes);
  SegmentEncoder enc(steps, m, pay, npay, p.precision);
  uint64_t x[kMaxLanes];

  bool mode_a = true;
  x[0] = 1;
  enc.encode(shape.tail_begin, m, x, 1);
  if (shape.tail_begin > 0 && x[0] < kLower) {
    mode_a = false;
    enc.restart();
    x[0] = kLower;
    enc.encode(shape.tail_begin, m, x, 1);
  }
  if (shape.tail_begin > 0) {
    for (int j = 1; j < shape.lanes; ++j) x[j] = enc.size() ? (uint64_t(1) << 32) + enc.pop() : kLower;
    enc.encode(0, shape.tail_begin, x, shape.lanes);
  }

  std::vector<uint8_t> out;
  out.reserve(16 + 8 * shape.lanes + 4 * enc.size());
  BitWriter bits(out);
  bits.put(mode_a ? 0 : 1, 1);
  const bool normal = shape.tail_begin > 0;
  for (int j = 0; j < shape.lanes; ++j) {
    const int b = bit_length(x[j]);
    bits.put(static_cast<uint64_t>(normal ? b - 32 : b), normal ? 5 : 6);
    bits.put(x[j], b - 1);
  }
  const std::size_t head = out.size();
  out.resize(head + 4 * enc.size());
  uint8_t* o = out.data() + head;
  for (std::size_t k = enc.size(); k-- > 0; o += 4) {
    const uint32_t w = enc.words()[k];
    o[0] = static_cast<uint8_t>(w);
    o[1] = static_cast<uint8_t>(w >> 8);
    o[2] = static_cast<uint8_t>(w >> 16);
    o[3] = static_cast<uint8_t>(w >> 24);
  }
  return out;
}

SegmentDecoder::SegmentDecoder(const uint8_t* data, std::size_t size, uint64_t m, const StreamParams& p)
    : precision_(p.precision), m_(m) {
  const SegmentShape shape = segment_shape(m, p.lanes);
  lanes_ = shape.lanes;
  tail_begin_ = shape.tail_begin;
  BitReader bits(data, size);
  mode_a_ = bits.get(1) == 0;
  const bool normal = tail_begin_ > 0;
  for (int j = 0; j < lanes_; ++j) {
    const int b = normal ? 32 + static_cast<int>(bits.get(5)) : static_cast<int>(bits.get(6));
    if (b == 0) throw FormatError("rANS stream: invalid final-state length in a segment");
    x_[j] = (uint64_t(1) << (b - 1)) | bits.get(b - 1);
    // Lane 0 of a tail-only segment in mode B starts in the normal regime too.
    if (!mode_a_ && x_[j] < kLower) throw FormatError("rANS stream: final state below the lower bound");
  }
  const std::size_t head = bits.bytes_used();
  if ((size - head) % 4 != 0) throw FormatError("rANS stream: segment is not a whole number of words");
  words_ = data + head;
  nwords_ = (size - head) / 4;
  in_tail_ = tail_begin_ == 0;
}

void SegmentDecoder::enter_tail() {
  // Lanes 1.. now hold their initial states: 2^32 + seed word, or 2^31 once the
  // tail's words ran out, in lane order.
  bool seeded = true;
  for (int j = 1; j < lanes_; ++j) {
    if (x_[j] >> 32 == 1 && seeded) {
      pending_[pending_count_++] = static_cast<uint32_t>(x_[j]);
    } else if (x_[j] == kLower) {
      seeded = false;
    } else {
      fail("a lane ended in an invalid initial state");
    }
  }
  in_tail_ = true;
}

void SegmentDecoder::check_end() const {
  if (pending_pos_ != pending_count_ || word_pos_ != nwords_) fail("words left over at the end of a segment");
  if (x_[0] != (mode_a_ ? 1 : kLower)) fail("lane 0 ended in an invalid initial state");
}

void SegmentDecoder::fail(const char* why) const {
  throw FormatError(std::string("rANS stream corrupted: ") + why);
}

}  // namespace rans
}  // namespace chansim

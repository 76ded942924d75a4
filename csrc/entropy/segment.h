// One independent segment of a rANS stream: interleaved lanes, a single-lane
// tail whose words seed the other lanes, and the flushed final states.
//
// Lane schedule of a segment of m symbols (docs/format.md §2.3): symbols
// [0, tail_begin) go to lane i mod lanes; the tail [tail_begin, m) goes to
// lane 0 alone. The encoder runs backwards, so it codes the tail first, with
// lane 0 starting from state 1 ("mode A": no words until the state reaches
// 2^31, which the decoder recognises by running out of words). The words the
// tail emitted last then become the initial states 2^32 + w of lanes 1, 2, ...
// Every lane but lane 0 thus starts from data instead of a constant, and the
// segment costs its final states plus a few bits, not 31 bits per lane.
// If the tail holds too little information to lift lane 0 to 2^31, it is
// re-encoded from state 2^31 ("mode B").
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "format.h"
#include "rans.h"

namespace chansim {
namespace rans {

// Encoder input: one packed interval per symbol (start | freq << 32, bit 63 set
// when a payload follows on the same lane) and the payloads, by index. A
// payload is an optional second modelled interval, then raw bits (low chunk
// first, in kRawChunkBits pieces): escaped values, wide uniform ranges and
// Zipf offsets.
struct Payload {
  uint64_t index;
  uint32_t value = 0;
  uint32_t bits = 0;  // 0..32 raw bits
  uint32_t next_start = 0;
  uint32_t next_freq = 0;  // 0: no second interval
};
constexpr uint64_t kPayloadFlag = uint64_t(1) << 63;
inline uint64_t pack_step(uint32_t start, uint32_t freq) { return start | (static_cast<uint64_t>(freq) << 32); }

// Encodes symbols [0, m) of a segment; pay[0, npay) are its payloads (indices
// relative to the segment). Returns the segment's bytes.
std::vector<uint8_t> encode_segment(const uint64_t* steps, uint64_t m, const Payload* pay, std::size_t npay,
                                    const StreamParams& p);

// Decoder output of a model lookup: the interval holding the slot and the
// symbol; kind says how the symbol is completed: kEscape and kAddRaw read
// raw_bits raw bits (the value itself, or added to value), kNext asks the
// model's next() for a second interval.
enum : uint8_t { kPlain = 0, kEscape = 1, kAddRaw = 2, kNext = 3 };
struct Lookup {
  uint32_t start;
  uint32_t freq;
  int32_t value;
  uint8_t raw_bits;
  uint8_t kind;
};

// A model for SegmentDecoder::decode provides
//   void lookup(std::size_t i, int n, const uint32_t* slots, Lookup* out) const;
// resolving the slots of symbols i, i+1, ..., i+n-1 of the current call, and,
// if it returns kNext, also
//   Lookup next(std::size_t i, int32_t value, uint32_t slot) const;
template <class M, class = void>
struct HasNext : std::false_type {};
template <class M>
struct HasNext<M, std::void_t<decltype(std::declval<const M&>().next(std::size_t(), int32_t(), uint32_t()))>>
    : std::true_type {};

class SegmentDecoder {
 public:
  // data/size: the segment's bytes; m: its symbol count. Throws FormatError.
  SegmentDecoder(const uint8_t* data, std::size_t size, uint64_t m, const StreamParams& p);

  uint64_t position() const { return pos_; }

  // Decodes the next `count` symbols into out; symbol j uses model index i0 + j.
  template <class Model>
  void decode(const Model& model, std::size_t i0, uint64_t count, int32_t* out) {
    uint64_t done = 0;
    while (done < count) {
      if (pos_ < tail_begin_) {
        const uint64_t n = count - done < tail_begin_ - pos_ ? count - done : tail_begin_ - pos_;
        decode_lanes(model, i0 + done, n, out + done);
        done += n;
      } else {
        if (!in_tail_) enter_tail();
        decode_tail(model, i0 + done, count - done, out + done);
        done = count;
      }
    }
    if (pos_ == m_) check_end();
  }

 private:
  bool take(uint32_t& w) {
    if (pending_pos_ < pending_count_) {
      w = pending_[pending_pos_++];
      return true;
    }
    if (word_pos_ >= nwords_) return false;
    const uint8_t* b = words_ + 4 * word_pos_++;
    w = static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 | static_cast<uint32_t>(b[2]) << 16 |
        static_cast<uint32_t>(b[3]) << 24;
    return true;
  }
  // Normal regime: a state below 2^31 always has its word in the stream.
  void refill(uint64_t& x) {
    if (decode_needs_word(x)) {
      uint32_t w;
      if (!take(w)) fail("ran out of words");
      decode_take(x, w);
    }
  }
  // Lane 0's tail in mode A: past its last word the state just shrinks to 1.
  void refill_tail(uint64_t& x) {
    if (decode_needs_word(x)) {
      uint32_t w;
      if (take(w)) {
        decode_take(x, w);
      } else if (!mode_a_) {
        fail("ran out of words");
      }
    }
  }
  // The rest of a symbol whose first lookup was not kPlain: a second interval
  // (kNext), then raw bits.
  template <bool kTail, class Model>
  int32_t complete(const Model& model, std::size_t i, uint64_t& x, Lookup r) {
    if constexpr (HasNext<Model>::value) {
      if (r.kind == kNext) {
        r = model.next(i, r.value, decode_slot(x, precision_));
        decode_advance(x, {r.start, r.freq}, precision_);
        kTail ? refill_tail(x) : refill(x);
      }
    }
    return r.raw_bits ? finish_raw<kTail>(x, r) : r.value;
  }

  template <bool kTail>
  int32_t finish_raw(uint64_t& x, const Lookup& r) {
    uint32_t raw = 0;
    for (int shift = 0; shift < r.raw_bits; shift += kRawChunkBits) {
      const int bits = r.raw_bits - shift < kRawChunkBits ? r.raw_bits - shift : kRawChunkBits;
      const uint32_t chunk = decode_slot(x, precision_) >> (precision_ - bits);
      decode_advance(x, {chunk << (precision_ - bits), uint32_t(1) << (precision_ - bits)}, precision_);
      kTail ? refill_tail(x) : refill(x);
      raw |= chunk << shift;
    }
    return r.kind == kEscape ? static_cast<int32_t>(raw)
                             : static_cast<int32_t>(static_cast<uint32_t>(r.value) + raw);
  }

  template <class Model>
  void decode_lanes(const Model& model, std::size_t i, uint64_t n, int32_t* out) {
    uint32_t slots[kMaxLanes];
    Lookup res[kMaxLanes];
    int lane = static_cast<int>(pos_ % static_cast<uint64_t>(lanes_));
    while (n > 0) {
      const int cnt = static_cast<int>(n < static_cast<uint64_t>(lanes_ - lane) ? n : lanes_ - lane);
      for (int j = 0; j < cnt; ++j) slots[j] = decode_slot(x_[lane + j], precision_);
      model.lookup(i, cnt, slots, res);
      for (int j = 0; j < cnt; ++j) {
        uint64_t& x = x_[lane + j];
        decode_advance(x, {res[j].start, res[j].freq}, precision_);
        refill(x);
        out[j] = res[j].kind == kPlain ? res[j].value : complete<false>(model, i + j, x, res[j]);
      }
      i += cnt;
      out += cnt;
      n -= cnt;
      pos_ += cnt;
      lane = 0;
    }
  }

  template <class Model>
  void decode_tail(const Model& model, std::size_t i, uint64_t n, int32_t* out) {
    uint64_t& x = x_[0];
    for (uint64_t j = 0; j < n; ++j) {
      const uint32_t slot = decode_slot(x, precision_);
      Lookup r;
      model.lookup(i + j, 1, &slot, &r);
      decode_advance(x, {r.start, r.freq}, precision_);
      refill_tail(x);
      out[j] = r.kind == kPlain ? r.value : complete<true>(model, i + j, x, r);
    }
    pos_ += n;
  }

  void enter_tail();
  void check_end() const;
  [[noreturn]] void fail(const char* why) const;

  int precision_;
  int lanes_;
  uint64_t m_;
  uint64_t tail_begin_;
  uint64_t pos_ = 0;
  bool mode_a_ = true;
  bool in_tail_ = false;
  uint64_t x_[kMaxLanes] = {};
  const uint8_t* words_ = nullptr;
  std::size_t nwords_ = 0;
  std::size_t word_pos_ = 0;
  uint32_t pending_[kMaxLanes] = {};
  int pending_count_ = 0;
  int pending_pos_ = 0;
};

}  // namespace rans
}  // namespace chansim

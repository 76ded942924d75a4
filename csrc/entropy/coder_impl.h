// The two generic passes behind every family: Encoder::append (model pass to
// coding steps, parallel over blocks) and Decoder::run (segment decoders in
// parallel). Included by the family translation units only.
#pragma once
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "coder.h"
#include "common/parallel.h"

namespace chansim {
namespace rans {

template <class BlockFn>
void Encoder::append_blocks(std::size_t n, const BlockFn& block_fn) {
  if (n > kMaxSymbols - steps_.size()) throw std::invalid_argument("a rANS stream holds at most 2**40 symbols");
  const std::size_t base = steps_.size();
  constexpr std::size_t kBlock = std::size_t(1) << 14;
  const std::size_t nblocks = (n + kBlock - 1) / kBlock;
  std::vector<std::vector<Payload>> pays(nblocks);
  try {
    steps_.resize(base + n);
    parallel_for(nblocks, 1, 1, [&](std::size_t b0, std::size_t b1) {
      for (std::size_t blk = b0; blk < b1; ++blk) {
        const std::size_t i0 = blk * kBlock, i1 = std::min(n, i0 + kBlock);
        block_fn(i0, i1, steps_.data() + base + i0, pays[blk]);
        for (auto& r : pays[blk]) {
          r.index += base;
          steps_[r.index] |= kPayloadFlag;
        }
      }
    });
    for (const auto& r : pays) pay_.insert(pay_.end(), r.begin(), r.end());
  } catch (...) {
    steps_.resize(base);
    while (!pay_.empty() && pay_.back().index >= base) pay_.pop_back();
    throw;
  }
}

template <class StepFn>
void Encoder::append(std::size_t n, const StepFn& step_fn) {
  append_blocks(n, [&](std::size_t i0, std::size_t i1, uint64_t* steps, std::vector<Payload>& pays) {
    Payload pay{0};  // step_fn writes it only for the (rare) symbols that need one
    for (std::size_t i = i0; i < i1; ++i) {
      steps[i - i0] = step_fn(i, &pay);
      if (pay.bits | pay.next_freq) {
        pay.index = i;
        pays.push_back(pay);
        pay = Payload{0};
      }
    }
  });
}

template <class Model>
void Decoder::run(const Model& model, std::size_t n, int32_t* out) {
  if (n == 0) return;
  const uint64_t a = pos_, b = pos_ + n;
  const auto segment_of = [this](uint64_t i) {
    uint64_t lo = 0, hi = nseg_ - 1;
    while (lo < hi) {
      const uint64_t mid = lo + (hi - lo + 1) / 2;
      if (segment_begin(mid, header_.n, nseg_) <= i) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  };
  const uint64_t k0 = segment_of(a), k1 = segment_of(b - 1);
  try {
    parallel_for(static_cast<std::size_t>(k1 - k0 + 1), 1, 1, [&](std::size_t s0, std::size_t s1) {
      for (std::size_t s = s0; s < s1; ++s) {
        const uint64_t k = k0 + s;
        const uint64_t sb = segment_begin(k, header_.n, nseg_), se = segment_begin(k + 1, header_.n, nseg_);
        auto& dec = segments_[k];
        if (!dec) {
          const uint64_t off = header_.segment_offsets[k];
          dec.reset(new SegmentDecoder(data_.data() + off, header_.segment_offsets[k + 1] - off, se - sb,
                                       header_.params));
        }
        const uint64_t lo = std::max(a, sb), hi = std::min(b, se);
        dec->decode(model, lo - a, hi - lo, out + (lo - a));
        if (dec->position() == se - sb) dec.reset();
      }
    });
  } catch (...) {
    failed_ = true;
    throw;
  }
  pos_ = b;
}

}  // namespace rans
}  // namespace chansim

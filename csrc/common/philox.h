// Philox4x32-10 (Salmon et al., SC 2011) with chansim's addressing.
//
// Address of a 128-bit block: key = 64-bit seed (k0 = low word, k1 = high word),
// counter = (block index as 64 bits, stream as 64 bits), little word first:
//   c0 = block low, c1 = block high, c2 = stream low, c3 = stream high.
// Word w of the stream (seed, stream) is word (w mod 4) of block w / 4.
#pragma once
#include <cstdint>

#include "hd.h"

namespace chansim {

struct Philox4x32 {
  static constexpr uint32_t kM0 = 0xD2511F53u;
  static constexpr uint32_t kM1 = 0xCD9E8D57u;
  static constexpr uint32_t kW0 = 0x9E3779B9u;
  static constexpr uint32_t kW1 = 0xBB67AE85u;
};

CHANSIM_HD void philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1) {
  uint32_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(Philox4x32::kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(Philox4x32::kM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += Philox4x32::kW0;
    k1 += Philox4x32::kW1;
  }
  c[0] = c0; c[1] = c1; c[2] = c2; c[3] = c3;
}

// The four words of block `block` of stream `stream` under key `seed`.
CHANSIM_HD void philox_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]) {
  out[0] = static_cast<uint32_t>(block);
  out[1] = static_cast<uint32_t>(block >> 32);
  out[2] = static_cast<uint32_t>(stream);
  out[3] = static_cast<uint32_t>(stream >> 32);
  philox4x32_10(out, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Word `index` of the stream, O(1) random access.
CHANSIM_HD uint32_t philox_word(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t b[4];
  philox_block(seed, stream, index >> 2, b);
  return b[index & 3u];
}

// 64-bit value `index` of the stream: words 2*index (low) and 2*index + 1 (high).
CHANSIM_HD uint64_t philox_u64(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t b[4];
  philox_block(seed, stream, index >> 1, b);
  const unsigned j = static_cast<unsigned>(index & 1u) * 2u;
  return static_cast<uint64_t>(b[j]) | (static_cast<uint64_t>(b[j + 1]) << 32);
}

// Codec stream packing (docs/format.md): purpose in bits 56..63, step in bits
// 40..55, chunk in bits 0..39.
CHANSIM_HD uint64_t stream_id(uint32_t purpose, uint32_t step, uint64_t chunk) {
  return (static_cast<uint64_t>(purpose & 0xFFu) << 56) |
         (static_cast<uint64_t>(step & 0xFFFFu) << 40) | (chunk & 0xFFFFFFFFFFull);
}

}  // namespace chansim

// rANS coder core and segment layer: single-state round trips at every
// precision, segments of every shape (lane counts, tail-only, mode A / mode B,
// raw payloads), state invariants, and corrupted segments that must end in
// FormatError or bounded output, never a crash or a hang.
#include <cstdio>
#include <random>
#include <vector>

#include "check.h"
#include "entropy/format.h"
#include "entropy/rans.h"
#include "entropy/segment.h"

using namespace chansim::rans;

namespace {

// A model over explicit per-symbol interval tables: symbol i uses table i % T.
struct TableSet {
  int precision;
  std::vector<std::vector<uint32_t>> cum;  // each: cum[0] = 0, ..., cum[K] = 2^p
};

TableSet random_tables(std::mt19937_64& g, int precision, int count, int K, bool skewed) {
  TableSet t{precision, {}};
  const uint32_t M = uint32_t(1) << precision;
  for (int c = 0; c < count; ++c) {
    std::vector<uint32_t> cum(K + 1);
    // Frequencies >= 1 summing to M; skewed tables give one symbol almost all.
    std::vector<double> w(K);
    for (int k = 0; k < K; ++k) w[k] = skewed ? (k == 0 ? 1.0 : 1e-9) : std::uniform_real_distribution<double>(0.01, 1.0)(g);
    double s = 0;
    for (double v : w) s += v;
    uint32_t acc = 0;
    const uint32_t free = M - static_cast<uint32_t>(K);
    double run = 0;
    for (int k = 0; k < K; ++k) {
      cum[k] = acc;
      run += w[k];
      const uint32_t next = (k + 1 == K) ? M : static_cast<uint32_t>(run / s * free) + static_cast<uint32_t>(k + 1);
      acc = next;
    }
    cum[K] = M;
    t.cum.push_back(cum);
  }
  return t;
}

struct TableModel {
  const TableSet& t;
  std::size_t base;  // symbol index of model index 0
  void lookup(std::size_t i, int n, const uint32_t* slots, Lookup* out) const {
    for (int j = 0; j < n; ++j) {
      const auto& cum = t.cum[(base + i + j) % t.cum.size()];
      int k = 0;
      while (cum[k + 1] <= slots[j]) ++k;
      // Symbol K - 1 doubles as an escape: a 32-bit raw payload follows.
      const bool esc = k + 2 == static_cast<int>(cum.size());
      out[j] = {cum[k], cum[k + 1] - cum[k], k, static_cast<uint8_t>(esc ? 32 : 0), static_cast<uint8_t>(esc ? kEscape : kPlain)};
    }
  }
};

// Encodes m symbols drawn from the tables (symbol K-1 escapes with a random
// value), decodes them in pieces of random size and compares.
int segment_round_trip(std::mt19937_64& g, const TableSet& t, uint64_t m, int lanes, bool tail_heavy) {
  const int K = static_cast<int>(t.cum[0].size()) - 1;
  std::vector<uint64_t> steps(m);
  std::vector<Payload> raw;
  std::vector<int32_t> expect(m);
  for (uint64_t i = 0; i < m; ++i) {
    const auto& cum = t.cum[i % t.cum.size()];
    // Draw a symbol with its probability (or symbol 0 for the low-entropy case).
    const uint32_t slot = tail_heavy ? 0 : static_cast<uint32_t>(g() >> (64 - t.precision));
    int k = 0;
    while (cum[k + 1] <= slot) ++k;
    steps[i] = pack_step(cum[k], cum[k + 1] - cum[k]);
    expect[i] = k;
    if (k == K - 1) {
      const uint32_t v = static_cast<uint32_t>(g());
      steps[i] |= kPayloadFlag;
      raw.push_back({i, v, 32, 0, 0});
      expect[i] = static_cast<int32_t>(v);
    }
  }
  StreamParams p;
  p.precision = t.precision;
  p.lanes = lanes;
  const std::vector<uint8_t> bytes = encode_segment(steps.data(), m, raw.data(), raw.size(), p);
  SegmentDecoder dec(bytes.data(), bytes.size(), m, p);
  std::vector<int32_t> got(m);
  uint64_t done = 0;
  while (done < m) {
    const uint64_t piece = std::min<uint64_t>(m - done, 1 + g() % 5000);
    dec.decode(TableModel{t, done}, 0, piece, got.data() + done);
    done += piece;
  }
  int bad = 0;
  for (uint64_t i = 0; i < m; ++i) bad += got[i] != expect[i];
  return bad;
}

}  // namespace

int main() {
  std::mt19937_64 g(12345);

  // 1. One state, random intervals, every precision: exact inverse and the
  //    state stays in [2^31, 2^63) between steps.
  for (int p = kMinPrecision; p <= kMaxPrecision; ++p) {
    const uint32_t M = uint32_t(1) << p;
    std::vector<Interval> iv(20000);
    for (auto& v : iv) {
      const uint32_t a = static_cast<uint32_t>(g() % M), b = static_cast<uint32_t>(g() % M);
      v.start = std::min(a, b);
      v.freq = std::max<uint32_t>(1, (a > b ? a - b : b - a));
    }
    std::vector<uint32_t> words;
    uint64_t x = kLower;
    bool in_range = true;
    for (std::size_t i = iv.size(); i-- > 0;) {
      encode_step(x, iv[i], p, [&](uint32_t w) { words.push_back(w); });
      in_range &= x >= kLower && x < (kLower << 32);
    }
    CHECK(in_range);
    std::size_t w = words.size();
    bool ok = true;
    for (std::size_t i = 0; i < iv.size(); ++i) {
      const uint32_t slot = decode_slot(x, p);
      ok &= slot >= iv[i].start && slot < iv[i].start + iv[i].freq;
      decode_advance(x, iv[i], p);
      if (decode_needs_word(x)) {
        ok &= w > 0;
        if (w > 0) decode_take(x, words[--w]);
      }
      ok &= x >= kLower;
    }
    CHECK(ok);
    CHECK(w == 0);
    CHECK(x == kLower);
  }

  // 2. Segments: every lane count, lengths around the tail boundary, mixed
  //    escapes, decoded in random pieces.
  for (int p : {16, 24, 30}) {
    const TableSet t = random_tables(g, p, 7, 9, false);
    for (int lanes : {1, 2, 3, 8, 32}) {
      for (uint64_t m : {uint64_t(1), uint64_t(5), uint64_t(4095), uint64_t(4096), uint64_t(4097), uint64_t(4100),
                         uint64_t(4096 + 31), uint64_t(70001)}) {
        const int bad = segment_round_trip(g, t, m, lanes, false);
        if (bad) std::printf("p=%d lanes=%d m=%llu: %d mismatches\n", p, lanes, static_cast<unsigned long long>(m), bad);
        CHECK(bad == 0);
      }
    }
  }

  // 3. A near-deterministic tail (symbol 0 at probability 1 - 8e-9) cannot lift
  //    lane 0 to 2^31: the segment falls back to mode B and the seeds run out.
  {
    const TableSet t = random_tables(g, 24, 1, 4, true);
    for (int lanes : {1, 8}) {
      for (uint64_t m : {uint64_t(100), uint64_t(9000)}) CHECK(segment_round_trip(g, t, m, lanes, true) == 0);
    }
  }

  // 4. Segment geometry: balanced, covering, a function of n alone.
  for (uint64_t n : {uint64_t(0), uint64_t(1), uint64_t(4096), uint64_t(1) << 20, (uint64_t(1) << 20) + 1,
                     uint64_t(123456789)}) {
    const uint64_t nseg = segment_count(n, 19);
    CHECK(segment_begin(0, n, nseg ? nseg : 1) == 0);
    if (nseg) CHECK(segment_begin(nseg, n, nseg) == n);
    for (uint64_t k = 0; k < nseg; ++k) {
      const uint64_t len = segment_begin(k + 1, n, nseg) - segment_begin(k, n, nseg);
      CHECK(len >= 1 && len <= (uint64_t(1) << 19));
    }
  }

  // 5. Corrupted segments: truncated, bit-flipped and random bytes end in
  //    FormatError or in some int32 symbols; never a crash or an endless loop
  //    (this test finishing is the check for the latter).
  {
    const TableSet t = random_tables(g, 24, 3, 9, false);
    const uint64_t m = 20000;
    std::vector<uint64_t> steps(m);
    for (uint64_t i = 0; i < m; ++i) {
      const auto& cum = t.cum[i % 3];
      const int k = static_cast<int>(g() % 7);
      steps[i] = pack_step(cum[k], cum[k + 1] - cum[k]);
    }
    StreamParams p;
    const std::vector<uint8_t> good = encode_segment(steps.data(), m, nullptr, 0, p);
    int errors = 0, silent = 0;
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<uint8_t> bad = good;
      if (trial % 3 == 0) {
        bad.resize(g() % bad.size());
      } else if (trial % 3 == 1) {
        bad[g() % bad.size()] ^= static_cast<uint8_t>(1u << (g() % 8));
      } else {
        for (auto& b : bad) b = static_cast<uint8_t>(g());
      }
      std::vector<int32_t> out(m);
      try {
        SegmentDecoder dec(bad.data(), bad.size(), m, p);
        dec.decode(TableModel{t, 0}, 0, m, out.data());
        ++silent;
      } catch (const chansim::FormatError&) {
        ++errors;
      }
    }
    std::printf("corrupted segments: %d FormatError, %d decoded silently\n", errors, silent);
    CHECK(errors > 250);  // the end-of-segment state checks catch nearly all
  }

  return chansim_test::finish("test_rans_core");
}

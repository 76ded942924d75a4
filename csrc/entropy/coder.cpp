#include "coder.h"

#include <algorithm>

#include "common/parallel.h"

namespace chansim {
namespace rans {

Encoder::Encoder(const StreamParams& p) : p_(p) { validate_params(p); }

std::vector<uint8_t> Encoder::finish() const {
  const uint64_t n = steps_.size();
  const uint64_t nseg = segment_count(n, p_.segment_log2);
  std::vector<std::vector<uint8_t>> segs(nseg);
  parallel_for(static_cast<std::size_t>(nseg), 1, 1, [&](std::size_t k0, std::size_t k1) {
    for (std::size_t k = k0; k < k1; ++k) {
      const uint64_t b = segment_begin(k, n, nseg), e = segment_begin(k + 1, n, nseg);
      const auto by_index = [](const Payload& r, uint64_t i) { return r.index < i; };
      const auto r0 = std::lower_bound(pay_.begin(), pay_.end(), b, by_index);
      const auto r1 = std::lower_bound(r0, pay_.end(), e, by_index);
      std::vector<Payload> local(r0, r1);
      for (auto& r : local) r.index -= b;
      segs[k] = encode_segment(steps_.data() + b, e - b, local.data(), local.size(), p_);
    }
  });
  std::vector<std::size_t> sizes(nseg);
  std::size_t total = 0;
  for (uint64_t k = 0; k < nseg; ++k) total += sizes[k] = segs[k].size();
  std::vector<uint8_t> out;
  out.reserve(total + 16 + 5 * nseg);
  write_header(p_, n, sizes, out);
  for (const auto& s : segs) out.insert(out.end(), s.begin(), s.end());
  return out;
}

Decoder::Decoder(const uint8_t* data, std::size_t size) : data_(data, data + size) {
  header_ = parse_header(data_.data(), data_.size());
  nseg_ = segment_count(header_.n, header_.params.segment_log2);
  segments_.resize(nseg_);
}

Decoder::~Decoder() = default;

void Decoder::begin_call(std::size_t n) const {
  if (failed_) throw FormatError("rANS stream: an earlier call found the stream corrupted");
  if (n > remaining())
    throw FormatError("rANS stream: " + std::to_string(n) + " symbols requested but only " +
                      std::to_string(remaining()) + " remain");
}

}  // namespace rans
}  // namespace chansim

// chansim's rANS coder with parametric model families: the C++ API under
// chansim.rans.
//
// The encoder turns each call into coding steps at once (validating its
// arguments, multi-threaded) and buffers them; finish() runs the rANS pass over
// all buffered steps, segment by segment in parallel, and returns the stream.
// The decoder resolves calls in the order they were encoded. Both sides derive
// every table from canonicalised parameters by deterministic code, so the bytes
// and the decoded symbols are identical on every machine and at any thread count.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "args.h"
#include "format.h"
#include "param_family.h"
#include "segment.h"

namespace chansim {
namespace rans {

// Location-scale model, optionally on a dithered grid: with width and offset the
// symbols follow P(k) = G((width (k - offset + 1/2) - mean) / scale) -
// G((width (k - offset - 1/2) - mean) / scale), i.e. the family with mean
// mean / width + offset and scale scale / width.
struct ParamArgs {
  Shape shape;
  RealArg mean, scale;
  bool dithered = false;
  RealArg width, offset;
};

// Categorical rows: one shared row of K probabilities, or one row per symbol.
struct TableArgs {
  RealArg probs;  // kF32 / kF64 only
  std::size_t K;
  bool shared;
};

struct ZipfArgs {
  RealArg lam;
  int64_t n_max;
};

struct UniformArgs {
  IntArg low, high;
};

class Encoder {
 public:
  explicit Encoder(const StreamParams& p);
  const StreamParams& params() const { return p_; }
  uint64_t size() const { return steps_.size(); }

  // Each call appends n symbols. Bad arguments throw std::invalid_argument and
  // leave the encoder unchanged.
  void encode(const int32_t* symbols, std::size_t n, const ParamArgs& a);
  void encode(const int32_t* symbols, std::size_t n, const TableArgs& a);
  void encode(const int32_t* symbols, std::size_t n, const ZipfArgs& a);
  void encode(const int32_t* symbols, std::size_t n, const UniformArgs& a);

  std::vector<uint8_t> finish() const;

 private:
  // Appends n steps computed by block_fn(i0, i1, steps, payloads) over
  // threads: it writes the steps of symbols [i0, i1) of the call to
  // steps[0, i1 - i0) and pushes their payloads (indices relative to the call)
  // in order.
  template <class BlockFn>
  void append_blocks(std::size_t n, const BlockFn& block_fn);
  // The same with step_fn(i, &payload) -> packed step per symbol; a payload
  // with bits or next_freq set is kept.
  template <class StepFn>
  void append(std::size_t n, const StepFn& step_fn);

  StreamParams p_;
  std::vector<uint64_t> steps_;
  std::vector<Payload> pay_;
};

class Decoder {
 public:
  Decoder(const uint8_t* data, std::size_t size);  // copies the data; throws FormatError
  ~Decoder();
  const StreamParams& params() const { return header_.params; }
  uint64_t size() const { return header_.n; }
  uint64_t remaining() const { return header_.n - pos_; }

  // Decode the next n symbols. std::invalid_argument for bad arguments (nothing
  // consumed), FormatError for a corrupted stream or n > remaining().
  void decode(int32_t* out, std::size_t n, const ParamArgs& a);
  void decode(int32_t* out, std::size_t n, const TableArgs& a);
  void decode(int32_t* out, std::size_t n, const ZipfArgs& a);
  void decode(int32_t* out, std::size_t n, const UniformArgs& a);

 private:
  template <class Model>
  void run(const Model& model, std::size_t n, int32_t* out);
  void begin_call(std::size_t n) const;

  std::vector<uint8_t> data_;
  Header header_;
  uint64_t nseg_;
  uint64_t pos_ = 0;
  bool failed_ = false;
  std::vector<std::unique_ptr<SegmentDecoder>> segments_;
};

}  // namespace rans
}  // namespace chansim

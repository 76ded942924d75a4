// The core's exception types, one per kind of failure:
//
//  * chansim::FormatError — the input data is malformed: a truncated,
//    corrupted, foreign or future-version stream, message or file. Every
//    decoder of the core throws it (rANS streams, GPRS/GRC messages); the
//    bindings raise it as Python's chansim.FormatError (a ValueError).
//  * std::invalid_argument — the caller's arguments are bad (out-of-range
//    parameters, sizes that disagree); Python sees ValueError.
//
// Anything else (std::runtime_error: a search ran out of its budget) is neither.
#pragma once
#include <stdexcept>

namespace chansim {

class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace chansim

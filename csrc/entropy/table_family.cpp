// Categorical family: a shared probability row (one table, bucket-indexed for
// decoding) or one row per symbol (quantized on the fly).
#include "table_family.h"

#include <vector>

#include "coder_impl.h"
#include "validate.h"

namespace chansim {
namespace rans {
namespace {

struct SharedTableModel {
  const CategoricalTable& table;
  void lookup(std::size_t, int n, const uint32_t* slots, Lookup* out) const {
    for (int j = 0; j < n; ++j) out[j] = table.lookup(slots[j]);
  }
};

struct RowTableModel {
  const TableArgs& a;
  int precision;
  void lookup(std::size_t i, int n, const uint32_t* slots, Lookup* out) const {
    thread_local std::vector<uint32_t> cum;
    cum.resize(a.K + 1);
    for (int j = 0; j < n; ++j) {
      categorical_cum(a.probs, (i + j) * a.K, a.K, precision, cum.data());
      out[j] = categorical_lookup(cum.data(), slots[j], precision, 0, a.K - 1);
    }
  }
};

}  // namespace

void Encoder::encode(const int32_t* symbols, std::size_t n, const TableArgs& a) {
  check_args(n, a, p_.precision);
  const int p = p_.precision;
  const auto escaped = [symbols](std::size_t i, bool escape, Payload* pay) {
    if (escape) {
      pay->bits = 32;
      pay->value = static_cast<uint32_t>(symbols[i]);
    }
  };
  if (a.shared) {
    const CategoricalTable table(a.probs, a.K, p);
    append(n, [&](std::size_t i, Payload* pay) {
      bool escape;
      const uint64_t step = table.step(symbols[i], &escape);
      escaped(i, escape, pay);
      return step;
    });
  } else {
    append(n, [&](std::size_t i, Payload* pay) {
      bool escape;
      const uint64_t step = categorical_step_row(a.probs, i * a.K, a.K, symbols[i], p, &escape);
      escaped(i, escape, pay);
      return step;
    });
  }
}

void Decoder::decode(int32_t* out, std::size_t n, const TableArgs& a) {
  begin_call(n);
  const int p = header_.params.precision;
  check_args(n, a, p);
  if (a.shared) {
    if (n == 0) return;
    const CategoricalTable table(a.probs, a.K, p);
    run(SharedTableModel{table}, n, out);
  } else {
    run(RowTableModel{a, p}, n, out);
  }
}

}  // namespace rans
}  // namespace chansim

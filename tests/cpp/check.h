// Minimal assertion harness for the C++ unit tests (no external framework, so
// the tests build anywhere the core builds).
#pragma once
#include <cstdio>
#include <cstdlib>

namespace chansim_test {
inline int& failures() {
  static int n = 0;
  return n;
}
inline int finish(const char* name) {
  if (failures() == 0) {
    std::printf("%s: all checks passed\n", name);
    return 0;
  }
  std::printf("%s: %d check(s) failed\n", name, failures());
  return 1;
}
}  // namespace chansim_test

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::printf("%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
      ++chansim_test::failures();                                                \
    }                                                                            \
  } while (0)

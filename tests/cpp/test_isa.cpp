// The AVX2 run-time test of common/isa.h. avx2_usable() is the decision
// cpu_has_avx2() makes from the CPUID and XCR0 registers it reads itself; on
// this CPU it must agree with GCC/Clang's __builtin_cpu_supports("avx2"), an
// independent reading (libgcc's or compiler-rt's CPU model). Synthetic
// register values cover the cases one machine cannot (no OS support for YMM
// state, old CPUs).
#include <cstdint>
#include <cstdio>

#include "check.h"
#include "common/isa.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CHANSIM_TEST_BUILTIN_CPU 1
#endif

using namespace chansim;

namespace {

constexpr uint32_t kOsxsave = 1u << 27, kAvx = 1u << 28, kAvx2 = 1u << 5;

void test_synthetic() {
  CHECK(avx2_usable(7, kOsxsave | kAvx, 0x7, kAvx2));
  CHECK(avx2_usable(0x20, kOsxsave | kAvx | 1u, 0xE7, kAvx2 | 1u));  // AVX-512 state on too
  CHECK(!avx2_usable(6, kOsxsave | kAvx, 0x7, kAvx2));   // leaf 7 absent: its EBX is garbage
  CHECK(!avx2_usable(7, kAvx, 0x7, kAvx2));              // OS does not use XSAVE
  CHECK(!avx2_usable(7, kOsxsave, 0x7, kAvx2));          // no AVX
  CHECK(!avx2_usable(7, kOsxsave | kAvx, 0x3, kAvx2));   // OS saves XMM but not YMM
  CHECK(!avx2_usable(7, kOsxsave | kAvx, 0x5, kAvx2));   // YMM without XMM state
  CHECK(!avx2_usable(7, kOsxsave | kAvx, 0x7, 0));       // no AVX2
}

#if defined(CHANSIM_TEST_BUILTIN_CPU)
void test_this_cpu() {
  // SSE2 is part of x86-64: a runtime that denies it has no CPU model (zig's compiler-rt
  // stubs it), so there is nothing to compare against, which is why isa.h does not use it.
  if (!__builtin_cpu_supports("sse2")) {
    std::printf("__builtin_cpu_supports has no CPU model here: comparison skipped\n");
    return;
  }
  const bool builtin = __builtin_cpu_supports("avx2");
  std::printf("cpu_has_avx2: %d, __builtin_cpu_supports(\"avx2\"): %d\n", cpu_has_avx2(), builtin);
#if defined(CHANSIM_HAVE_AVX2_TU)
  CHECK(cpu_has_avx2() == builtin);
#else
  CHECK(!cpu_has_avx2());
#endif
}
#endif

}  // namespace

int main() {
  test_synthetic();
#if defined(CHANSIM_TEST_BUILTIN_CPU)
  test_this_cpu();
#endif
  return chansim_test::finish("test_isa");
}

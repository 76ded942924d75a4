// The AVX2 run-time test of common/isa.h. avx2_usable() is the decision the
// MSVC build makes from CPUID and XCR0; here it is fed the same registers,
// read the same way (leaf 0, leaf 1, XGETBV only if OSXSAVE, leaf 7 subleaf 0),
// and must agree with GCC/Clang's __builtin_cpu_supports("avx2") on this CPU.
// Synthetic register values cover the cases one machine cannot (no OS
// support for YMM state, old CPUs).
#include <cstdint>
#include <cstdio>

#include "check.h"
#include "common/isa.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define CHANSIM_TEST_RAW_CPUID 1
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

#if defined(CHANSIM_TEST_RAW_CPUID)
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0u));  // xgetbv, without -mxsave
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

void test_this_cpu() {
  unsigned a, b, c, d;
  __cpuid(0, a, b, c, d);
  const uint32_t max_leaf = a;
  bool usable = false;
  if (max_leaf >= 7) {
    __cpuid(1, a, b, c, d);
    const uint32_t ecx1 = c;
    if (ecx1 & kOsxsave) {
      const uint64_t xcr0 = xgetbv0();
      __cpuid_count(7, 0, a, b, c, d);
      usable = avx2_usable(max_leaf, ecx1, xcr0, b);
      std::printf("max leaf %u, CPUID.1:ECX %08x, XCR0 %llx, CPUID.7:EBX %08x\n", max_leaf, ecx1,
                  static_cast<unsigned long long>(xcr0), b);
    }
  }
  const bool builtin = __builtin_cpu_supports("avx2");
  std::printf("avx2_usable: %d, __builtin_cpu_supports(\"avx2\"): %d\n", usable, builtin);
  CHECK(usable == builtin);
#if defined(CHANSIM_HAVE_AVX2_TU)
  CHECK(cpu_has_avx2() == builtin);
#endif
}
#endif

}  // namespace

int main() {
  test_synthetic();
#if defined(CHANSIM_TEST_RAW_CPUID)
  test_this_cpu();
#endif
  return chansim_test::finish("test_isa");
}

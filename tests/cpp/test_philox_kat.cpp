// Philox4x32-10 against the Random123 known-answer vectors in shared/data.
#include <cstdio>
#include <cstring>
#include <string>

#include "check.h"
#include "common/philox.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("usage: test_philox_kat DATA_DIR\n");
    return 77;
  }
  const std::string path = std::string(argv[1]) + "/philox4x32_10_kat.txt";
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) {
    std::printf("SKIP: %s not found (shared data absent)\n", path.c_str());
    return 77;
  }
  char line[512];
  int vectors = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (line[0] == '#' || std::strncmp(line, "philox4x32", 10) != 0) continue;
    unsigned rounds, c[4], k[2], e[4];
    const int got = std::sscanf(line, "philox4x32 %u %x %x %x %x %x %x %x %x %x %x", &rounds, &c[0], &c[1], &c[2],
                                &c[3], &k[0], &k[1], &e[0], &e[1], &e[2], &e[3]);
    CHECK(got == 11);
    CHECK(rounds == 10);
    uint32_t ctr[4] = {c[0], c[1], c[2], c[3]};
    chansim::philox4x32_10(ctr, k[0], k[1]);
    for (int i = 0; i < 4; ++i) CHECK(ctr[i] == e[i]);
    // The addressed form: key = seed, counter = (block, stream).
    uint32_t blk[4];
    const uint64_t seed = static_cast<uint64_t>(k[0]) | (static_cast<uint64_t>(k[1]) << 32);
    const uint64_t block = static_cast<uint64_t>(c[0]) | (static_cast<uint64_t>(c[1]) << 32);
    const uint64_t stream = static_cast<uint64_t>(c[2]) | (static_cast<uint64_t>(c[3]) << 32);
    chansim::philox_block(seed, stream, block, blk);
    for (int i = 0; i < 4; ++i) CHECK(blk[i] == e[i]);
    ++vectors;
  }
  std::fclose(f);
  CHECK(vectors >= 3);
  std::printf("%d known-answer vectors checked\n", vectors);
  return chansim_test::finish("test_philox_kat");
}

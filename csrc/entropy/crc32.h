// CRC-32 of a byte string: the ISO-HDLC / zlib / PNG CRC (reflected
// polynomial 0xEDB88320, initial value and final xor 0xFFFFFFFF), so it equals
// Python's zlib.crc32. Check value: crc32("123456789") = 0xCBF43926.
//
// Contract: a bytewise-serial, table-free loop (about 1 byte/ns is plenty for
// message trailers); the value is stored little-endian by the formats that
// carry it (docs/format.md).
#pragma once
#include <cstddef>
#include <cstdint>

namespace chansim {

inline uint32_t crc32(const uint8_t* data, std::size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

}  // namespace chansim

// Fuzzes compress::qsgd's decoder (see decode_fuzz.hpp for the modes) at
// every field width it is used with: the input's last byte picks the level
// count (1, 3, 7, 15 or 127: 2, 3, 4, 5 or 8 bits per value); buckets of 50,
// so fields of odd widths straddle bytes and buckets start mid-byte.
#include <terse/compress/qsgd.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size == 0) {
    return 0;
  }
  const std::size_t rest = size - 1;
  switch (data[rest] % 5) {
    case 0: return terse::fuzz::fuzz_decode(terse::compress::qsgd<1>{.bucket = 50}, data, rest);
    case 1: return terse::fuzz::fuzz_decode(terse::compress::qsgd<3>{.bucket = 50}, data, rest);
    case 2: return terse::fuzz::fuzz_decode(terse::compress::qsgd<7>{.bucket = 50}, data, rest);
    case 3: return terse::fuzz::fuzz_decode(terse::compress::qsgd<15>{.bucket = 50}, data, rest);
    default: return terse::fuzz::fuzz_decode(terse::compress::qsgd<127>{.bucket = 50}, data, rest);
  }
}

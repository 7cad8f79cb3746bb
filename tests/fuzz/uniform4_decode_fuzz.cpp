// Fuzzes compress::uniform<4>'s decoder; buckets of 37, so the
// fields of a bucket start mid-byte (see decode_fuzz.hpp for the modes).
#include <terse/compress/uniform.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  return terse::fuzz::fuzz_decode(terse::compress::uniform<4>{.bucket = 37}, data, size);
}

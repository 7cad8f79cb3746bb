// Fuzzes compress::sign's decoder (see decode_fuzz.hpp for the modes);
// small buckets, so payloads carry many scales.
#include <terse/compress/sign.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  return terse::fuzz::fuzz_decode(terse::compress::sign{.bucket = 64}, data, size);
}

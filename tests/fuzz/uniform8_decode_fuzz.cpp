// Fuzzes compress::uniform<8>'s decoder; small buckets, so
// payloads carry many ranges (see decode_fuzz.hpp for the modes).
#include <terse/compress/uniform.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  return terse::fuzz::fuzz_decode(terse::compress::uniform<8>{.bucket = 64}, data, size);
}

// Fuzzes compress::adaptive's decoder (see decode_fuzz.hpp for the modes).
// The harness draws ctx.step from 0..255 and the horizon is 256, so inputs
// reach all three widths (2 bits below step 76, 4 below 179, 8 after) and
// payloads whose width disagrees with the schedule.
#include <terse/compress/adaptive.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  return terse::fuzz::fuzz_decode(terse::compress::adaptive{.bucket = 64, .horizon = 256}, data, size);
}

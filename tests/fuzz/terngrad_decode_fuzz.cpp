// Fuzzes compress::terngrad's decoder (see decode_fuzz.hpp for the modes);
// buckets of 60: not a multiple of 8, so codes of a bucket share bytes at both ends.
#include <terse/compress/terngrad.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  return terse::fuzz::fuzz_decode(terse::compress::terngrad{.bucket = 60}, data, size);
}

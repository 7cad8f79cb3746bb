// Fuzzes compress::dgc's decoder (see decode_fuzz.hpp for the modes).
#include <terse/compress/dgc.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  return terse::fuzz::fuzz_decode(terse::compress::dgc{.density = 0.05f}, data, size);
}

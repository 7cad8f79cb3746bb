// Fuzzes compress::randomk's decoder (see decode_fuzz.hpp for the modes);
// density 0.1: the decoder resamples Floyd's set for every new (seed, step, n).
#include <terse/compress/randomk.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  return terse::fuzz::fuzz_decode(terse::compress::randomk{.density = 0.1}, data, size);
}

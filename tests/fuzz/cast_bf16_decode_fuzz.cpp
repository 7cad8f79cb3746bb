// Fuzzes compress::cast_bf16's decoder (see decode_fuzz.hpp for the modes).
#include <terse/compress/cast.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  return terse::fuzz::fuzz_decode(terse::compress::cast_bf16{}, data, size);
}

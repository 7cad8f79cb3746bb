// Fuzzes compress::cast_bf16's decoder (see decode_fuzz.hpp for the modes).
#include <terse/compress/cast.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  // Saturating, so the structured mode can encode any finite float it
  // draws (the default, overflow::raise, refuses those beyond the range).
  return terse::fuzz::fuzz_decode(terse::compress::cast_bf16{.on_overflow = terse::compress::overflow::saturate}, data,
                                  size);
}

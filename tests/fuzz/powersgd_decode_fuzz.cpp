// Fuzzes compress::powersgd::decode_add with raw and mutated-valid payloads
// (rank 2; the harness's structured mode encodes finite floats of any size,
// FLT_MAX included, so encode's scaling path is fuzzed too).
#include <terse/compress/powersgd.hpp>

#include <cstddef>
#include <cstdint>

#include "decode_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  return terse::fuzz::fuzz_decode(terse::compress::powersgd{}, data, size);
}

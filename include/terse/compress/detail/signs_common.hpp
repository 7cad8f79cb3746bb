#pragma once
/// @file
/// Pieces shared by the sign, terngrad and randomk codecs: the checks a
/// decoder runs on the per-bucket scales and packed codes every bucketed
/// body holds, and a finiteness scan. Sizes (bucket_count, packed_bytes)
/// come from packing.hpp. Host only, except valid_scale_bits.

#include <terse/compress/detail/packing.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/config.hpp>
#include <terse/core/error.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace terse::detail {

/// Bit pattern of a float (alignment-free load from a payload).
inline std::uint32_t load_u32(const std::byte* at) noexcept
{
  std::uint32_t bits;
  std::memcpy(&bits, at, sizeof bits);
  return bits;
}

/// A scale is valid when it is a non-negative finite float (+0 and
/// subnormals included); as an integer that is exactly bits < 0x7f800000.
TERSE_HOST_DEVICE constexpr bool valid_scale_bits(std::uint32_t bits) noexcept
{
  return bits < 0x7f800000u;
}

/// Checks `count` scales stored at `at`; malformed_payload otherwise.
inline void check_scales(const std::byte* at, std::size_t count, wire::codec_id codec)
{
  std::uint32_t worst = 0;  // the largest bit pattern decides: one pass, no early exit
  for (std::size_t b = 0; b < count; ++b) {
    const std::uint32_t bits = load_u32(at + 4 * b);
    worst = bits > worst ? bits : worst;
  }
  TERSE_CHECK(valid_scale_bits(worst), errc::malformed_payload,
              std::string(wire::to_string(codec)) + " payload holds a negative or non-finite bucket scale");
}

/// Checks the unused high bits of the last byte of a packed array of n codes
/// of `bits` bits: an encoder writes them as zero, so anything else is not
/// a payload it produced.
inline void check_padding(const std::byte* packed, std::size_t n, std::size_t bits, wire::codec_id codec)
{
  const std::size_t per_byte = 8 / bits;
  if (n % per_byte == 0) {
    return;
  }
  const auto last = static_cast<unsigned>(packed[n / per_byte]);
  TERSE_CHECK((last >> ((n % per_byte) * bits)) == 0, errc::malformed_payload,
              std::string(wire::to_string(codec)) + " payload has nonzero padding bits");
}

/// Header, exact length and scales of a bucketed payload: returns the body
/// offset of the packed codes. `param` and `bucket` must match the
/// receiver's configuration.
inline std::size_t check_bucketed_payload(host_span<const std::byte> payload, wire::codec_id codec, std::size_t n,
                                          std::uint32_t param, std::size_t bucket, std::size_t code_bits)
{
  const wire::header h = wire::read_header(payload, codec, n);
  const std::string name(wire::to_string(codec));
  TERSE_CHECK(h.param == param, errc::malformed_payload,
              name + " payload has parameter " + std::to_string(h.param) + "; expected " + std::to_string(param));
  TERSE_CHECK(h.aux == bucket, errc::malformed_payload,
              name + " payload was coded with buckets of " + std::to_string(h.aux) + " values; the receiver uses " +
                  std::to_string(bucket));
  // n equals the receiver's buffer size, so these cannot overflow; checked anyway.
  const std::uint64_t scales = wire::checked_mul(bucket_count(n, bucket), 4);
  const std::uint64_t expected =
      wire::checked_add(wire::checked_add(wire::header_bytes, scales), packed_bytes(n, code_bits));
  wire::expect_length(payload, expected, codec);
  check_scales(payload.data() + wire::header_bytes, bucket_count(n, bucket), codec);
  check_padding(payload.data() + wire::header_bytes + scales, n, code_bits, codec);
  return static_cast<std::size_t>(wire::header_bytes + scales);
}

}  // namespace terse::detail

#pragma once
/// @file
/// The wire format every byte payload starts with, and the checks a decoder
/// runs before it reads a single value. A payload is
///
///     header (24 bytes, little-endian) | codec body
///
///     offset size field
///     0      2    magic   0x5354 ("TS")
///     2      1    version 2
///     3      1    codec   terse::wire::codec_id (128..255: user codecs)
///     4      4    param   codec parameter (bits, levels, k ...)
///     8      8    count   elements the payload describes
///     16     8    aux     codec-specific (bucket size, stored count ...)
///
/// A decoder names what it expects (codec, element count); anything else
/// (wrong magic or version, another codec, another count, a length that is
/// not exactly what the header implies, an index out of range, a non-finite
/// scale) is `terse::error(errc::malformed_payload)`, never undefined
/// behaviour. Lengths are computed with overflow checks.

#include <terse/core/error.hpp>
#include <terse/core/span.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

namespace terse::wire {

static_assert(std::endian::native == std::endian::little, "terse's wire format is little-endian");

enum class codec_id : std::uint8_t {
  identity = 1,
  cast_fp16 = 2,
  cast_bf16 = 3,
  uniform = 4,
  qsgd = 5,
  sign = 6,
  terngrad = 7,
  topk = 8,
  randomk = 9,
  threshold = 10,
  dgc = 11,
  powersgd = 12,
  adaptive = 13,
};

constexpr std::string_view to_string(codec_id id) noexcept
{
  switch (id) {
    case codec_id::identity: return "identity";
    case codec_id::cast_fp16: return "cast<fp16>";
    case codec_id::cast_bf16: return "cast<bf16>";
    case codec_id::uniform: return "uniform";
    case codec_id::qsgd: return "qsgd";
    case codec_id::sign: return "sign";
    case codec_id::terngrad: return "terngrad";
    case codec_id::topk: return "topk";
    case codec_id::randomk: return "randomk";
    case codec_id::threshold: return "threshold";
    case codec_id::dgc: return "dgc";
    case codec_id::powersgd: return "powersgd";
    case codec_id::adaptive: return "adaptive";
  }
  return static_cast<std::uint8_t>(id) >= 128 ? "user codec" : "unknown";
}

/// Ids 128 to 255 are reserved for codecs written outside terse: a user
/// codec declares `static constexpr terse::wire::codec_id id =
/// terse::wire::user_codec(n)` with n in 0..127 (unique within a program),
/// writes this header with it, and terse never uses those ids. The id keys
/// checkpoints (a state saved under one codec does not load under another)
/// and payload validation (read_header rejects another codec's bytes).
inline constexpr std::uint8_t first_user_codec = 128;

consteval codec_id user_codec(unsigned n)
{
  if (n >= 128) {
    throw "terse::wire::user_codec(n): n must be below 128";  // a compile-time error
  }
  return static_cast<codec_id>(first_user_codec + n);
}

constexpr bool is_user_codec(codec_id id) noexcept
{
  return static_cast<std::uint8_t>(id) >= first_user_codec;
}

inline constexpr std::uint16_t magic = 0x5354;
/// 2: top-k and DGC count k = ceil(density * n) with float rounding
/// forgiven (detail::topk_count); version 1 payloads are refused.
inline constexpr std::uint8_t version = 2;
inline constexpr std::size_t header_bytes = 24;

struct header {
  codec_id codec = codec_id::identity;
  std::uint32_t param = 0;
  std::uint64_t count = 0;
  std::uint64_t aux = 0;
};

/// Writes `h` at the start of `out` (which must hold header_bytes).
inline void write_header(host_span<std::byte> out, const header& h)
{
  TERSE_EXPECTS(out.size() >= header_bytes, "the output buffer cannot hold a payload header");
  std::byte* p = out.data();
  const std::uint16_t m = magic;
  std::memcpy(p, &m, 2);
  p[2] = static_cast<std::byte>(version);
  p[3] = static_cast<std::byte>(h.codec);
  std::memcpy(p + 4, &h.param, 4);
  std::memcpy(p + 8, &h.count, 8);
  std::memcpy(p + 16, &h.aux, 8);
}

/// Reads and validates the header of `payload`: it must be a version-1
/// `expected` payload of exactly `expected_count` elements.
inline header read_header(host_span<const std::byte> payload, codec_id expected, std::uint64_t expected_count)
{
  const std::string codec_name = is_user_codec(expected)
                                     ? "user codec " + std::to_string(static_cast<unsigned>(expected))
                                     : std::string(to_string(expected));
  TERSE_CHECK(payload.size() >= header_bytes, errc::malformed_payload,
              codec_name + " payload of " + std::to_string(payload.size()) + " bytes is shorter than its header");
  const std::byte* p = payload.data();
  std::uint16_t m = 0;
  std::memcpy(&m, p, 2);
  TERSE_CHECK(m == magic, errc::malformed_payload, codec_name + " payload has a bad magic number");
  TERSE_CHECK(static_cast<std::uint8_t>(p[2]) == version, errc::malformed_payload,
              codec_name + " payload has wire version " + std::to_string(static_cast<unsigned>(p[2])) +
                  "; this build reads version " + std::to_string(version));
  header h;
  h.codec = static_cast<codec_id>(p[3]);
  TERSE_CHECK(h.codec == expected, errc::malformed_payload,
              "expected a " + codec_name + " payload, got codec id " + std::to_string(static_cast<unsigned>(p[3])));
  std::memcpy(&h.param, p + 4, 4);
  std::memcpy(&h.count, p + 8, 8);
  std::memcpy(&h.aux, p + 16, 8);
  TERSE_CHECK(h.count == expected_count, errc::malformed_payload,
              codec_name + " payload describes " + std::to_string(h.count) + " elements; the receiver expects " +
                  std::to_string(expected_count));
  return h;
}

/// a * b, or malformed_payload when it overflows (lengths come off the wire).
inline std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b)
{
  TERSE_CHECK(b == 0 || a <= std::numeric_limits<std::uint64_t>::max() / b, errc::malformed_payload,
              "payload length overflows");
  return a * b;
}

/// a + b, or malformed_payload when it overflows.
inline std::uint64_t checked_add(std::uint64_t a, std::uint64_t b)
{
  TERSE_CHECK(a <= std::numeric_limits<std::uint64_t>::max() - b, errc::malformed_payload, "payload length overflows");
  return a + b;
}

/// The payload must be exactly `expected` bytes long.
inline void expect_length(host_span<const std::byte> payload, std::uint64_t expected, codec_id codec)
{
  TERSE_CHECK(payload.size() == expected, errc::malformed_payload,
              std::string(to_string(codec)) + " payload is " + std::to_string(payload.size()) +
                  " bytes; its header implies " + std::to_string(expected));
}

/// Little-endian scalar load and store at a byte pointer (alignment-free).
template <class T>
inline T load(const std::byte* at) noexcept
{
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}
template <class T>
inline void store(std::byte* at, T value) noexcept
{
  std::memcpy(at, &value, sizeof(T));
}

}  // namespace terse::wire

#pragma once
/// @file
/// How compressed payloads travel inside a collective: a 9-byte frame
/// (status, payload length) before each codec payload. The status lets a
/// rank that cannot contribute (non-finite input) or an owner that received
/// a malformed payload still take part, so every rank learns of it after
/// the exchange and raises the same error, instead of some ranks waiting
/// out a timeout.

#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace terse::detail {

enum class frame_status : std::uint8_t {
  ok = 0,
  non_finite = 1,  ///< the sender's input held NaN or Inf
  malformed = 2,   ///< an owner received a payload it could not decode
};

inline constexpr std::size_t frame_header_bytes = 9;

/// The tag the device path's point-to-point traffic uses.
inline constexpr int collective_tag = 0x7e55;

/// Writes the frame header for a payload of `length` bytes at `frame`.
inline void write_frame(std::byte* frame, frame_status status, std::uint64_t length) noexcept
{
  frame[0] = static_cast<std::byte>(status);
  wire::store(frame + 1, length);
}

struct frame_view {
  frame_status status;
  host_span<const std::byte> payload;
};

/// Reads a frame out of `bytes` (a received message), checking that the
/// declared length fits.
inline frame_view read_frame(host_span<const std::byte> bytes)
{
  TERSE_CHECK(bytes.size() >= frame_header_bytes, errc::malformed_payload, "a collective frame is too short");
  const auto status = static_cast<std::uint8_t>(bytes[0]);
  TERSE_CHECK(status <= 2, errc::malformed_payload, "a collective frame has an unknown status");
  const auto length = wire::load<std::uint64_t>(bytes.data() + 1);
  TERSE_CHECK(length <= bytes.size() - frame_header_bytes, errc::malformed_payload,
              "a collective frame declares " + std::to_string(length) + " payload bytes but carries " +
                  std::to_string(bytes.size() - frame_header_bytes));
  return frame_view{static_cast<frame_status>(status), bytes.subspan(frame_header_bytes, length)};
}

/// The worse of two statuses (malformed beats non-finite beats ok).
constexpr frame_status worst(frame_status a, frame_status b) noexcept
{
  return a > b ? a : b;
}

/// Raises the error a non-ok status stands for.
[[noreturn]] inline void raise_status(frame_status status, const char* where)
{
  if (status == frame_status::non_finite) {
    TERSE_FAIL(errc::non_finite, std::string(where) + ": a rank's input holds NaN or Inf; no state was changed");
  }
  TERSE_FAIL(errc::malformed_payload, std::string(where) + ": a rank received a payload it could not decode");
}

}  // namespace terse::detail

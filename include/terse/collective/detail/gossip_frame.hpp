#pragma once
/// @file
/// The 32-byte header in front of every gossip message, so a receiver
/// checks what it got before it mixes it in:
///
///     offset size field
///     0      4    magic "TGSP" (0x50534754 little-endian)
///     4      1    version (1)
///     5      1    mixer (1 average, 2 push-sum, 3 CHOCO)
///     6      1    flags: bit 0 = the sender's values were not all finite
///     7      1    bytes per value (4 or 8)
///     8      8    plan hash of the round (topology, weights, epoch, round)
///     16     8    round number
///     24     8    payload bytes that follow (at most the frame's room)
///
/// A frame is the header plus room for the largest payload, so every
/// message of a round has a size both ends know before it arrives.

#include <terse/core/error.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace terse::detail {

inline constexpr std::size_t gossip_header_bytes = 32;
inline constexpr std::uint32_t gossip_magic = 0x50534754u;
inline constexpr std::uint8_t gossip_version = 1;
inline constexpr std::uint8_t gossip_flag_non_finite = 1;
/// Gossip's exchanges use this tag (below the allreduce's range).
inline constexpr int gossip_tag = 1000;

struct gossip_header {
  std::uint8_t mixer = 0;
  std::uint8_t flags = 0;
  std::uint8_t value_bytes = 0;
  std::uint64_t plan_hash = 0;
  std::uint64_t round = 0;
  std::uint64_t payload_bytes = 0;
};

inline void write_gossip_header(const gossip_header& h, std::byte* out) noexcept
{
  std::memcpy(out, &gossip_magic, 4);
  out[4] = std::byte{gossip_version};
  out[5] = std::byte{h.mixer};
  out[6] = std::byte{h.flags};
  out[7] = std::byte{h.value_bytes};
  std::memcpy(out + 8, &h.plan_hash, 8);
  std::memcpy(out + 16, &h.round, 8);
  std::memcpy(out + 24, &h.payload_bytes, 8);
}

/// Reads and checks the header of a frame from `peer`; raises
/// errc::malformed_payload (a damaged frame) or errc::mismatch (a frame of
/// another round, mixer or plan) naming the peer.
inline gossip_header read_gossip_header(host_span<const std::byte> frame, const gossip_header& expected, int peer)
{
  // Built only when a check fails: a round that checks out allocates nothing.
  const auto from = [peer] { return " in the gossip frame from rank " + std::to_string(peer); };
  TERSE_CHECK(frame.size() >= gossip_header_bytes, errc::malformed_payload, "short header" + from());
  std::uint32_t magic = 0;
  std::memcpy(&magic, frame.data(), 4);
  TERSE_CHECK(magic == gossip_magic && static_cast<std::uint8_t>(frame[4]) == gossip_version, errc::malformed_payload,
              "bad magic or version" + from());
  gossip_header h;
  h.mixer = static_cast<std::uint8_t>(frame[5]);
  h.flags = static_cast<std::uint8_t>(frame[6]);
  h.value_bytes = static_cast<std::uint8_t>(frame[7]);
  std::memcpy(&h.plan_hash, frame.data() + 8, 8);
  std::memcpy(&h.round, frame.data() + 16, 8);
  std::memcpy(&h.payload_bytes, frame.data() + 24, 8);
  TERSE_CHECK(h.mixer == expected.mixer && h.value_bytes == expected.value_bytes, errc::mismatch,
              "another mixer or value type" + from());
  TERSE_CHECK(
      h.round == expected.round, errc::mismatch,
      "round " + std::to_string(h.round) + " where this rank runs round " + std::to_string(expected.round) + from());
  TERSE_CHECK(h.plan_hash == expected.plan_hash, errc::mismatch, "another topology plan" + from());
  TERSE_CHECK((h.flags & ~gossip_flag_non_finite) == 0, errc::malformed_payload, "unknown flags" + from());
  TERSE_CHECK(h.payload_bytes <= frame.size() - gossip_header_bytes, errc::malformed_payload,
              "payload of " + std::to_string(h.payload_bytes) + " bytes in a frame of " + std::to_string(frame.size()) +
                  from());
  return h;
}

}  // namespace terse::detail

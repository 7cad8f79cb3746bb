#pragma once
/// @file
/// Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as
/// easy as 1, 2, 3", SC'11), the counter-based generator of Random123. One
/// function of (counter, key), identical on host and device, so any rank or
/// device can replay any draw without state.

#include <terse/core/config.hpp>

#include <cstdint>

namespace terse {

struct philox_counter {
  std::uint32_t word[4];
};
struct philox_key {
  std::uint32_t word[2];
};

namespace detail {
inline constexpr std::uint32_t philox_m0 = 0xD2511F53u;
inline constexpr std::uint32_t philox_m1 = 0xCD9E8D57u;
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9u;  // golden ratio
inline constexpr std::uint32_t philox_w1 = 0xBB67AE85u;  // sqrt(3) - 1

TERSE_HOST_DEVICE TERSE_FORCEINLINE constexpr void philox_round(philox_counter& c, philox_key k) noexcept
{
  const std::uint64_t p0 = static_cast<std::uint64_t>(philox_m0) * c.word[0];
  const std::uint64_t p1 = static_cast<std::uint64_t>(philox_m1) * c.word[2];
  const auto hi0 = static_cast<std::uint32_t>(p0 >> 32);
  const auto lo0 = static_cast<std::uint32_t>(p0);
  const auto hi1 = static_cast<std::uint32_t>(p1 >> 32);
  const auto lo1 = static_cast<std::uint32_t>(p1);
  c = philox_counter{{hi1 ^ c.word[1] ^ k.word[0], lo1, hi0 ^ c.word[3] ^ k.word[1], lo0}};
}
}  // namespace detail

/// Philox4x32 with 10 rounds: four independent 32-bit words per counter.
TERSE_HOST_DEVICE TERSE_FORCEINLINE constexpr philox_counter philox4x32_10(philox_counter counter,
                                                                           philox_key key) noexcept
{
  for (int round = 0; round < 10; ++round) {
    if (round != 0) {
      key.word[0] += detail::philox_w0;
      key.word[1] += detail::philox_w1;
    }
    detail::philox_round(counter, key);
  }
  return counter;
}

/// Maps 32 random bits to a float uniform in [0, 1) with 24 bits of
/// resolution; the same on every backend.
TERSE_HOST_DEVICE TERSE_FORCEINLINE constexpr float uniform_float(std::uint32_t bits) noexcept
{
  return static_cast<float>(bits >> 8) * 0x1p-24f;
}

/// The stream a stochastic compressor draws from: every draw is a pure
/// function of (seed, step, stream, index), so ranks that agree on those
/// agree on the draw, and a replay needs nothing saved but the step.
struct random_stream {
  std::uint64_t seed = 0;
  std::uint32_t step = 0;
  std::uint32_t stream = 0;  ///< e.g. a stable bucket id

  /// The four words of block `block` (indices 4*block .. 4*block+3).
  TERSE_HOST_DEVICE TERSE_FORCEINLINE constexpr philox_counter block(std::uint64_t block) const noexcept
  {
    return philox4x32_10(
        philox_counter{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), stream, step}},
        philox_key{{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}});
  }

  /// 32 random bits for element `index`.
  TERSE_HOST_DEVICE TERSE_FORCEINLINE constexpr std::uint32_t bits(std::uint64_t index) const noexcept
  {
    return block(index >> 2).word[index & 3u];
  }

  /// A uniform float in [0, 1) for element `index`.
  TERSE_HOST_DEVICE TERSE_FORCEINLINE constexpr float uniform(std::uint64_t index) const noexcept
  {
    return uniform_float(bits(index));
  }
};

}  // namespace terse

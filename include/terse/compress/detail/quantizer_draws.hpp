#pragma once
/// @file
/// The stochastic-rounding draws of the quantizers (uniform, qsgd,
/// adaptive): 16 bits of uniform noise per element, 8 elements per 128-bit
/// Philox4x32-10 block, so one block serves eight values instead of one.
///
/// Element j of a stream (j = ctx.offset + position in the input) takes its
/// 16 bits from
///
///     block (j / 64) * 8 + j % 8,   word (j % 64) / 16,   half (j / 8) % 2
///
/// (half 0 is the low 16 bits). A group of 64 consecutive elements thus uses
/// 8 consecutive blocks, and 8 consecutive elements take the same word and
/// half of 8 consecutive blocks: a SIMD register holding the same word of
/// 8 blocks yields the draws of 8 consecutive elements without a transpose.
///
/// The 16 bits k become u = (k + 1/2) * 2^-16, in (0, 1). Rounding with
/// floor(x + u) then has E[floor(x + u)] - x in (-2^-17, 2^-17]: the
/// discreteness of u costs at most 2^-17 of one quantisation step.

#include <terse/core/config.hpp>
#include <terse/core/philox.hpp>

#include <cstddef>
#include <cstdint>

namespace terse::detail {

/// Elements served by one group of 8 Philox blocks.
inline constexpr std::uint64_t draws_per_group = 64;

/// The 16-bit draw k of element `j` of `stream`.
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t draw16(const random_stream& stream, std::uint64_t j) noexcept
{
  const philox_counter c = stream.block((j >> 6) * 8 + (j & 7u));
  const unsigned word = static_cast<unsigned>(j >> 4) & 3u;
  // A select rather than c.word[word]: a dynamic index sends the array to
  // local memory on a GPU.
  const std::uint32_t w = word == 0 ? c.word[0] : word == 1 ? c.word[1] : word == 2 ? c.word[2] : c.word[3];
  return (j & 8u) != 0 ? w >> 16 : w & 0xffffu;
}

/// u = (k + 1/2) 2^-16 for a 16-bit draw k: exact in float.
TERSE_HOST_DEVICE TERSE_FORCEINLINE float dither(std::uint32_t k) noexcept
{
  return static_cast<float>(k) * 0x1p-16f + 0x1p-17f;  // both terms and the sum are exact
}

/// The 64 draws of group `group` (elements 64*group .. 64*group + 63), in
/// element order. Portable: used where SIMD is not available and for the
/// ragged edges of a buffer.
inline void draw_group16(const random_stream& stream, std::uint64_t group, std::uint16_t out[64]) noexcept
{
  for (std::uint32_t lane = 0; lane < 8; ++lane) {
    const philox_counter c = stream.block(group * 8 + lane);
    for (std::uint32_t word = 0; word < 4; ++word) {
      out[word * 16 + lane] = static_cast<std::uint16_t>(c.word[word] & 0xffffu);
      out[word * 16 + 8 + lane] = static_cast<std::uint16_t>(c.word[word] >> 16);
    }
  }
}

}  // namespace terse::detail

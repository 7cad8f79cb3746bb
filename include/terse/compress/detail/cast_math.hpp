#pragma once
/// @file
/// The element-wise rule of `compress::cast<Storage>`, shared by the host
/// loops and the CUDA kernels: round to nearest even (core/numeric.hpp),
/// saturating finite values beyond the storage range at its largest finite
/// value instead of overflowing to Inf.

#include <terse/core/config.hpp>
#include <terse/core/numeric.hpp>

#include <cstdint>

namespace terse::detail {

template <class Storage>
struct cast_rule;

template <>
struct cast_rule<fp16> {
  /// The largest finite binary16 value.
  static constexpr float max_finite = 65504.0f;
  /// Exponent bits: all set means Inf or NaN.
  static constexpr std::uint16_t exponent_mask = 0x7c00u;

  /// Finite v -> binary16 bits, round to nearest even, saturating.
  TERSE_HOST_DEVICE TERSE_FORCEINLINE static std::uint16_t encode(float v) noexcept
  {
    return float_to_fp16_bits(v > max_finite ? max_finite : (v < -max_finite ? -max_finite : v));
  }
  TERSE_HOST_DEVICE TERSE_FORCEINLINE static float decode(std::uint16_t bits) noexcept
  {
    return fp16_bits_to_float(bits);
  }
};

template <>
struct cast_rule<bf16> {
  /// The bits of the largest finite bfloat16 value as a float (3.3895e38).
  static constexpr std::uint32_t max_finite_bits = 0x7f7f0000u;
  static constexpr std::uint16_t exponent_mask = 0x7f80u;

  /// Finite v -> bfloat16 bits, round to nearest even, saturating. Branch
  /// free, so loops over it vectorise; equals float_to_bf16_bits of the
  /// saturated value for every finite v.
  TERSE_HOST_DEVICE TERSE_FORCEINLINE static std::uint16_t encode(float v) noexcept
  {
    const std::uint32_t bits = float_bits(v);
    std::uint32_t magnitude = bits & 0x7fffffffu;
    magnitude = magnitude < max_finite_bits ? magnitude : max_finite_bits;  // float order is bit order here
    const std::uint32_t rounded = (magnitude + 0x7fffu + ((magnitude >> 16) & 1u)) >> 16;
    return static_cast<std::uint16_t>(((bits >> 16) & 0x8000u) | rounded);
  }
  TERSE_HOST_DEVICE TERSE_FORCEINLINE static float decode(std::uint16_t bits) noexcept
  {
    return bf16_bits_to_float(bits);
  }
};

}  // namespace terse::detail

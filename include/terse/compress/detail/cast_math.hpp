#pragma once
/// @file
/// The element-wise rule of `compress::cast<Storage>`, shared by the host
/// loops and the CUDA kernels: round to nearest even (core/numeric.hpp).
/// `encode` saturates finite values beyond the storage range at its largest
/// finite value, `encode_ieee` lets them round to Inf, and `overflows` says
/// which values those are (the codec's compress::overflow policy picks).

#include <terse/compress/overflow.hpp>
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

  /// |v| from here up rounds to Inf (halfway between 65504 and 65536, a tie
  /// that goes to the even pattern, Inf).
  static constexpr float overflow_from = 65520.0f;

  /// Finite v -> binary16 bits, round to nearest even, saturating.
  TERSE_HOST_DEVICE TERSE_FORCEINLINE static std::uint16_t encode(float v) noexcept
  {
    return float_to_fp16_bits(v > max_finite ? max_finite : (v < -max_finite ? -max_finite : v));
  }
  /// v -> binary16 bits, round to nearest even; beyond the range: +-Inf.
  TERSE_HOST_DEVICE TERSE_FORCEINLINE static std::uint16_t encode_ieee(float v) noexcept
  {
    return float_to_fp16_bits(v);
  }
  /// True when v rounds beyond the largest finite value (or is Inf or NaN).
  TERSE_HOST_DEVICE TERSE_FORCEINLINE static bool overflows(float v) noexcept
  {
    return (float_bits(v) & 0x7fffffffu) >= float_bits(overflow_from);
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
  /// The magnitude bits from which a float rounds to Inf: halfway between
  /// the largest finite bfloat16 and Inf (a tie that goes to Inf, the even
  /// pattern).
  static constexpr std::uint32_t overflow_from_bits = 0x7f7f8000u;
  /// Finite v -> bfloat16 bits, round to nearest even; beyond the range: +-Inf.
  TERSE_HOST_DEVICE TERSE_FORCEINLINE static std::uint16_t encode_ieee(float v) noexcept
  {
    const std::uint32_t bits = float_bits(v);
    const std::uint32_t magnitude = bits & 0x7fffffffu;
    const std::uint32_t rounded = (magnitude + 0x7fffu + ((magnitude >> 16) & 1u)) >> 16;
    return static_cast<std::uint16_t>(((bits >> 16) & 0x8000u) | rounded);
  }
  /// True when v rounds beyond the largest finite value (or is Inf or NaN).
  TERSE_HOST_DEVICE TERSE_FORCEINLINE static bool overflows(float v) noexcept
  {
    return (float_bits(v) & 0x7fffffffu) >= overflow_from_bits;
  }
  TERSE_HOST_DEVICE TERSE_FORCEINLINE static float decode(std::uint16_t bits) noexcept
  {
    return bf16_bits_to_float(bits);
  }
};

/// One value under `policy`: saturated unless the policy lets it round to Inf.
template <class Storage, compress::overflow Policy>
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint16_t cast_encode_one(float v) noexcept
{
  if constexpr (Policy == compress::overflow::infinity) {
    return cast_rule<Storage>::encode_ieee(v);
  } else {
    return cast_rule<Storage>::encode(v);
  }
}

}  // namespace terse::detail

#pragma once
/// @file
/// 16-bit float storage types `fp16` (IEEE binary16) and `bf16` (bfloat16)
/// with round-to-nearest-even conversions written once for host and device,
/// so a cast gives the same bits wherever it runs. Arithmetic happens in
/// float: these are wire and storage formats, not compute types.

#include <terse/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace terse {
namespace detail {

TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t float_bits(float value) noexcept
{
#if TERSE_IN_DEVICE_CODE
  return __float_as_uint(value);
#else
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
#endif
}

TERSE_HOST_DEVICE TERSE_FORCEINLINE float bits_float(std::uint32_t bits) noexcept
{
#if TERSE_IN_DEVICE_CODE
  return __uint_as_float(bits);
#else
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

/// float -> binary16, round to nearest even; NaN stays NaN (quiet), values
/// from 65520 up become Inf, tiny values become subnormals or signed zero.
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint16_t float_to_fp16_bits(float value) noexcept
{
  const std::uint32_t bits = float_bits(value);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) {  // Inf or NaN
    const std::uint32_t payload = magnitude > 0x7f800000u ? (0x200u | ((magnitude >> 13) & 0x3ffu)) : 0u;
    return static_cast<std::uint16_t>(sign | 0x7c00u | payload);
  }
  if (magnitude >= 0x477ff000u) {  // >= 65520: rounds up past the largest half
    return static_cast<std::uint16_t>(sign | 0x7c00u);
  }
  if (magnitude < 0x38800000u) {     // below 2^-14: a half subnormal or zero
    if (magnitude <= 0x33000000u) {  // at most 2^-25: rounds (ties to even) to zero
      return static_cast<std::uint16_t>(sign);
    }
    const std::uint32_t exponent = magnitude >> 23;
    const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - exponent;  // 14..24
    std::uint32_t result = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (result & 1u) != 0u)) {
      ++result;
    }
    return static_cast<std::uint16_t>(sign | result);
  }
  std::uint32_t result = (magnitude - 0x38000000u) >> 13;  // rebias 127 -> 15
  const std::uint32_t rest = magnitude & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (result & 1u) != 0u)) {
    ++result;  // a carry into the exponent is the correct rounding
  }
  return static_cast<std::uint16_t>(sign | result);
}

TERSE_HOST_DEVICE TERSE_FORCEINLINE float fp16_bits_to_float(std::uint16_t half) noexcept
{
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu;
  const std::uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0u) {
    // zero or subnormal: mantissa * 2^-24 is exact in float
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-08f;
    return sign != 0u ? -magnitude : magnitude;
  }
  if (exponent == 31u) {
    return bits_float(sign | 0x7f800000u | (mantissa << 13));
  }
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

/// float -> bfloat16, round to nearest even; NaN stays a quiet NaN.
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint16_t float_to_bf16_bits(float value) noexcept
{
  const std::uint32_t bits = float_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  }
  const std::uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

TERSE_HOST_DEVICE TERSE_FORCEINLINE float bf16_bits_to_float(std::uint16_t bits) noexcept
{
  return bits_float(static_cast<std::uint32_t>(bits) << 16);
}

/// True when none of the n floats stored at `data` (any alignment) is NaN
/// or +-Inf. Integer-only (the exponent field all ones carries into bit 31
/// after adding one to it), so it vectorises on any SIMD level and no
/// fast-math flag breaks it.
inline bool all_finite(const void* data, std::size_t n) noexcept
{
  const auto* at = static_cast<const unsigned char*>(data);
  std::uint32_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, at + 4 * i, sizeof bits);
    bad |= (bits & 0x7fffffffu) + 0x00800000u;
  }
  return (bad & 0x80000000u) == 0;
}

}  // namespace detail

/// IEEE binary16 storage. `fp16(x)` rounds to nearest even; `float(h)` is exact.
struct fp16 {
  std::uint16_t bits = 0;

  fp16() = default;
  TERSE_HOST_DEVICE explicit fp16(float value) noexcept : bits(detail::float_to_fp16_bits(value)) {}
  TERSE_HOST_DEVICE static fp16 from_bits(std::uint16_t raw) noexcept
  {
    fp16 h;
    h.bits = raw;
    return h;
  }
  TERSE_HOST_DEVICE explicit operator float() const noexcept { return detail::fp16_bits_to_float(bits); }
  friend TERSE_HOST_DEVICE bool operator==(fp16 a, fp16 b) noexcept { return a.bits == b.bits; }
};

/// bfloat16 storage (the top half of a float). `bf16(x)` rounds to nearest even.
struct bf16 {
  std::uint16_t bits = 0;

  bf16() = default;
  TERSE_HOST_DEVICE explicit bf16(float value) noexcept : bits(detail::float_to_bf16_bits(value)) {}
  TERSE_HOST_DEVICE static bf16 from_bits(std::uint16_t raw) noexcept
  {
    bf16 h;
    h.bits = raw;
    return h;
  }
  TERSE_HOST_DEVICE explicit operator float() const noexcept { return detail::bf16_bits_to_float(bits); }
  friend TERSE_HOST_DEVICE bool operator==(bf16 a, bf16 b) noexcept { return a.bits == b.bits; }
};

static_assert(sizeof(fp16) == 2 && sizeof(bf16) == 2, "16-bit storage types must be 2 bytes");

/// The type reductions accumulate in: float for the 16-bit types.
template <class T>
struct accumulator {
  using type = T;
};
template <>
struct accumulator<fp16> {
  using type = float;
};
template <>
struct accumulator<bf16> {
  using type = float;
};
template <class T>
using accumulator_t = typename accumulator<T>::type;

/// Converts between a value type and its accumulator (identity for float).
template <class To, class From>
TERSE_HOST_DEVICE TERSE_FORCEINLINE To convert(From value) noexcept
{
  return static_cast<To>(value);
}

}  // namespace terse

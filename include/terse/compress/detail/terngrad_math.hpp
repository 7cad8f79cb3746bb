#pragma once
/// @file
/// The element-wise rules of `compress::terngrad`, shared by the host loops
/// and the CUDA kernels so both write the same bytes.
///
/// Draws: element j (ctx.offset + its position in the input) takes the
/// 16-bit draw k = draw16(ctx.private_stream(), j) of quantizer_draws.hpp,
/// the layout every stochastic quantizer in terse shares (8 elements per
/// Philox block, 8 consecutive elements in the same word of 8 consecutive
/// blocks), and u = (k + 1/2) 2^-16.
///
/// Rounding: with s = max|v| of the bucket and r = |v|/s in [0, 1], the
/// value is kept (t = sign(v)) when u < r, which happens with probability
/// P = round(2^16 r) / 2^16 (ties down), so |P - r| <= 2^-17. Hence
/// |E[decode(v)] - v| <= s (2^-17 + 2^-24) per element (the 2^-24 is the
/// float rounding of r): unbiased to 16-bit resolution, and exactly so for
/// v = 0 (never kept) and |v| = s (always kept).

#include <terse/compress/detail/quantizer_draws.hpp>
#include <terse/core/config.hpp>
#include <terse/core/numeric.hpp>

#include <cstdint>

namespace terse::detail {

/// The 2-bit codes (3 is never written and is refused by the decoder).
inline constexpr unsigned terngrad_code_zero = 0;
inline constexpr unsigned terngrad_code_plus = 1;
inline constexpr unsigned terngrad_code_minus = 2;

/// |v| with the sign bit cleared (the same on every backend).
TERSE_HOST_DEVICE TERSE_FORCEINLINE float terngrad_magnitude(float v) noexcept
{
  return bits_float(float_bits(v) & 0x7fffffffu);
}

/// r = |v| / s, IEEE float division (explicitly round-to-nearest on the
/// device, whatever the nvcc flags).
TERSE_HOST_DEVICE TERSE_FORCEINLINE float terngrad_ratio(float magnitude, float scale) noexcept
{
#if TERSE_IN_DEVICE_CODE
  return __fdiv_rn(magnitude, scale);
#else
  return magnitude / scale;
#endif
}

/// The code of v in a bucket with scale s > 0, given its 16-bit draw k.
TERSE_HOST_DEVICE TERSE_FORCEINLINE unsigned terngrad_code(float v, float scale, std::uint32_t draw) noexcept
{
  if (!(dither(draw) < terngrad_ratio(terngrad_magnitude(v), scale))) {
    return terngrad_code_zero;
  }
  return v < 0.0f ? terngrad_code_minus : terngrad_code_plus;
}

/// The decoded value of a code: s, -s or +0 (a select, never a multiply).
TERSE_HOST_DEVICE TERSE_FORCEINLINE float terngrad_value(float scale, unsigned code) noexcept
{
  return code == terngrad_code_plus ? scale : code == terngrad_code_minus ? -scale : 0.0f;
}

/// |v| bits as an integer: for non-negative floats integer order is float
/// order and NaN patterns sort above +Inf, so an integer max finds the
/// scale and spots non-finite input at once, in any order.
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t terngrad_magnitude_bits(float v) noexcept
{
  return float_bits(v) & 0x7fffffffu;
}

/// True when the max magnitude pattern is finite.
TERSE_HOST_DEVICE TERSE_FORCEINLINE bool terngrad_finite_bits(std::uint32_t magnitude_bits) noexcept
{
  return magnitude_bits < 0x7f800000u;
}

}  // namespace terse::detail

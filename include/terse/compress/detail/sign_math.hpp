#pragma once
/// @file
/// The element-wise rules of `compress::sign`, shared by the host loops and
/// the CUDA kernels so both write the same bytes.
///
/// A bucket's scale is the mean of |v| computed in double in one fixed
/// order: 16 lanes, lane j summing elements j, j+16, j+32, ... of the
/// bucket in turn, then the lanes combined by `sign_lane_total`. The host
/// AVX2 loop, the scalar loop and the device kernel all follow this order,
/// so the scale is bit-identical everywhere (a plain running sum would not
/// be: double addition of floats spanning 2^-149..2^128 is not exact).

#include <terse/core/config.hpp>

#include <cfloat>
#include <cstddef>
#include <cstdint>

namespace terse::detail {

/// Lanes of the canonical mean-|v| summation.
inline constexpr int sign_lanes = 16;

/// The coded bit: 1 for v < 0. Zeros (+0 and -0) code as + (bit 0), so
/// decode(v) = scale * s(v) with s(v) = -1 for v < 0 and +1 otherwise.
TERSE_HOST_DEVICE TERSE_FORCEINLINE bool sign_negative(float v) noexcept
{
  return v < 0.0f;
}

/// One decoded value: +scale or -scale (a select, never a multiply, so no
/// compiler can contract it into something else).
TERSE_HOST_DEVICE TERSE_FORCEINLINE float sign_value(float scale, bool negative) noexcept
{
  return negative ? -scale : scale;
}

/// Combines the 16 lane sums in one fixed tree: b_q = (l_q + l_{q+4}) +
/// (l_{q+8} + l_{q+12}) for q < 4, then (b_0 + b_2) + (b_1 + b_3). The AVX2
/// loop gets there with vector adds, the device with shuffles by 4, 8, 2, 1.
TERSE_HOST_DEVICE TERSE_FORCEINLINE double sign_lane_total(const double* lane) noexcept
{
  double b[4];
  for (int q = 0; q < 4; ++q) {
    b[q] = (lane[q] + lane[q + 4]) + (lane[q + 8] + lane[q + 12]);
  }
  return (b[0] + b[2]) + (b[1] + b[3]);
}

/// The scale of a bucket of `count` values whose |v| sum to `total`: the
/// mean, rounded to float. The mean never exceeds max|v| <= FLT_MAX; the
/// clamp only guards the last rounding step.
TERSE_HOST_DEVICE TERSE_FORCEINLINE float sign_scale(double total, std::size_t count) noexcept
{
  const double mean = total / static_cast<double>(count);
  return mean < static_cast<double>(FLT_MAX) ? static_cast<float>(mean) : FLT_MAX;
}

/// True when a lane total came from finite inputs only (a double sum of
/// finite floats cannot overflow for any realistic count).
TERSE_HOST_DEVICE TERSE_FORCEINLINE bool sign_total_finite(double total) noexcept
{
  return total <= DBL_MAX;  // false for +Inf and NaN
}

}  // namespace terse::detail

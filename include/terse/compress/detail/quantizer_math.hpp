#pragma once
/// @file
/// Arithmetic shared by the quantizers on host and device. Every step that
/// decides a bit on the wire is a single IEEE operation (an explicit fma,
/// a product, a difference), never a product followed by a sum that a
/// compiler could contract differently on different backends.

#include <terse/core/config.hpp>
#include <terse/core/numeric.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>

namespace terse::detail {

/// Correctly rounded a * b + c on every backend.
TERSE_HOST_DEVICE TERSE_FORCEINLINE float fma_rn(float a, float b, float c) noexcept
{
#if TERSE_IN_DEVICE_CODE
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

/// a * b, never contracted into an fma with a later addition (nvcc
/// contracts across statements; __fmul_rn is never contracted).
TERSE_HOST_DEVICE TERSE_FORCEINLINE float mul_rn(float a, float b) noexcept
{
#if TERSE_IN_DEVICE_CODE
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

/// 2^k as a float, for k in [-149, 127] (exact, subnormal below -126).
TERSE_HOST_DEVICE TERSE_FORCEINLINE float pow2f(int k) noexcept
{
  return k >= -126 ? bits_float(static_cast<std::uint32_t>(k + 127) << 23)
                   : bits_float(std::uint32_t{1} << static_cast<unsigned>(k + 149));
}

/// 2^k as a double, for k in [-1022, 1023].
TERSE_HOST_DEVICE TERSE_FORCEINLINE double pow2d(int k) noexcept
{
  const std::uint64_t bits = static_cast<std::uint64_t>(k + 1023) << 52;
#if TERSE_IN_DEVICE_CODE
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

/// A power of two applied to values before they are scaled, chosen from the
/// bucket's range R so that levels / (R * pre) is a normal float: 2^64 for
/// tiny ranges (below 2^-60, where levels / R would overflow), 2^-32 for
/// huge ones (above 2^64, up to 2 * FLT_MAX), 1 otherwise. Multiplying by
/// it is exact except where a result falls below FLT_MIN, i.e. for values
/// that are negligible against the range.
TERSE_HOST_DEVICE TERSE_FORCEINLINE float prescale_for(double range) noexcept
{
  return range < 0x1p-60 ? 0x1p64f : (range > 0x1p64 ? 0x1p-32f : 1.0f);
}

/// floor(r) clamped to `limit`, for the quantizers' r = x + u: at least the
/// dither minus a rounding error (so truncation is floor) and at most a
/// little above limit + 1.
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t truncate_level(float r, std::uint32_t limit) noexcept
{
  const auto level = static_cast<std::uint32_t>(static_cast<std::int32_t>(r));  // r in [0, limit + 2)
  return level < limit ? level : limit;
}

}  // namespace terse::detail

#pragma once
/// @file
/// The element-wise rules of `compress::randomk`, shared by the host and the
/// CUDA kernels: how many indices, the bounded draws of Floyd's sampler, and
/// the scaled value each chosen coordinate carries.

#include <terse/core/config.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace terse::detail {

/// k = ceil(density * n), clamped to [1, n] for n >= 1 (0 for n = 0). The
/// product is taken in double less a relative 2^-40, so a decimal density
/// whose double is a hair above the intended value (0.07 * 100 =
/// 7.000000000000001) still gives the intended k.
inline std::size_t randomk_count(std::size_t n, double density) noexcept
{
  if (n == 0) {
    return 0;
  }
  const double x = density * static_cast<double>(n);
  const double k = std::ceil(x - x * 0x1p-40);
  if (!(k >= 1.0)) {
    return 1;
  }
  return k >= static_cast<double>(n) ? n : static_cast<std::size_t>(k);
}

/// The high 64 bits of a * b.
TERSE_HOST_DEVICE TERSE_FORCEINLINE constexpr std::uint64_t mulhi64(std::uint64_t a, std::uint64_t b) noexcept
{
  const std::uint64_t a_lo = a & 0xffffffffu;
  const std::uint64_t a_hi = a >> 32;
  const std::uint64_t b_lo = b & 0xffffffffu;
  const std::uint64_t b_hi = b >> 32;
  const std::uint64_t p0 = a_lo * b_lo;
  const std::uint64_t p1 = a_lo * b_hi;
  const std::uint64_t p2 = a_hi * b_lo;
  const std::uint64_t p3 = a_hi * b_hi;
  const std::uint64_t mid = (p0 >> 32) + (p1 & 0xffffffffu) + (p2 & 0xffffffffu);
  return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}

/// Floyd's draw m (m = 0 .. k-1): an integer uniform in [0, bound) from 64
/// bits of ctx.shared_stream() (block m/2, words 2(m%2) and 2(m%2)+1),
/// mapped by multiply-high. The map is exact to a relative bias of at most
/// bound / 2^64 per value: every k-subset has probability within a factor
/// (1 +- k n 2^-64) of C(n, k)^-1.
TERSE_HOST_DEVICE TERSE_FORCEINLINE constexpr std::uint64_t randomk_draw(const random_stream& stream, std::uint64_t m,
                                                                         std::uint64_t bound) noexcept
{
  const philox_counter c = stream.block(m >> 1);
  const bool odd = (m & 1u) != 0;
  const std::uint64_t low = odd ? c.word[2] : c.word[0];
  const std::uint64_t high = odd ? c.word[3] : c.word[1];
  return mulhi64(low | (high << 32), bound);
}

/// The value a chosen coordinate carries: v * scale (scale = fl32(n/k), or 1
/// when not rescaling), saturated to +-FLT_MAX so that finite input never
/// puts Inf on the wire. Saturation is the only place the estimate is
/// biased, and only for |v| > FLT_MAX / scale.
TERSE_HOST_DEVICE TERSE_FORCEINLINE float randomk_value(float v, float scale) noexcept
{
#if TERSE_IN_DEVICE_CODE
  const float w = __fmul_rn(v, scale);
#else
  const float w = v * scale;
#endif
  const std::uint32_t bits = float_bits(w);
  return (bits & 0x7fffffffu) == 0x7f800000u ? bits_float((bits & 0x80000000u) | 0x7f7fffffu) : w;
}

/// fl32(n / k): the unbiased rescaling (E[decode] = v up to this rounding).
inline float randomk_scale(std::size_t n, std::size_t k, bool unbiased) noexcept
{
  return unbiased && k != 0 ? static_cast<float>(static_cast<double>(n) / static_cast<double>(k)) : 1.0f;
}

}  // namespace terse::detail

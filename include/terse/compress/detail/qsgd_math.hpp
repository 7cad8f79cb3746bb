#pragma once
/// @file
/// The element-wise rule of `compress::qsgd<Levels>` and its canonical
/// bucket norm, shared by the host loops and the CUDA kernels so both write
/// the same bits.
///
/// With s = Levels and N the bucket's stored norm, value v goes to level
///     l = min(floor(|v| * s / N + u), s)     (computed as fma(|v| * pre, s / (N * pre), u))
/// and the field (l << 1) | signbit(v) of 1 + log2(s + 1) bits; it decodes
/// to sign * min(l * (N / s), N). E[decode] = v up to the dither resolution.
///
/// The norm is computed in one fixed order so every backend gets the same
/// float: values are scaled by 2^k (k = 0 when max|v| lies in [2^-40, 2^40),
/// where squares can neither overflow nor lose anything that matters;
/// otherwise k from the exponent of max|v|, so the largest scaled value lies
/// in [1, 2)), element i of the bucket is squared
/// into accumulator i % 32 with fma in increasing i, and the 32 partial sums
/// are added pairwise, a[l] += a[l + w] for w = 16, 8, 4, 2, 1 (a warp's
/// shuffle-down tree). Then N = sqrt(sum) * 2^-k in double, rounded to float
/// and saturated at FLT_MAX (a bucket whose norm exceeds FLT_MAX, possible
/// only with values near FLT_MAX, is then coded against FLT_MAX: still
/// finite, no longer unbiased).

#include <terse/compress/detail/quantizer_math.hpp>
#include <terse/core/config.hpp>
#include <terse/core/numeric.hpp>

#include <cfloat>
#include <cmath>
#include <cstdint>

namespace terse::detail {

/// Partial sums of the canonical norm.
inline constexpr int norm_lanes = 32;

/// Bits of 2^-40 and 2^40: between them a bucket's squares are summed
/// unscaled (k = 0), so one pass can find the maximum and the sum.
inline constexpr std::uint32_t norm_unscaled_low = 0x2b800000u;
inline constexpr std::uint32_t norm_unscaled_high = 0x53800000u;

/// The norm's scale exponent k from the bits of max|v| (nonzero, finite):
/// 0 for max|v| in [2^-40, 2^40); else such that max|v| * 2^k lies in
/// [1, 2) (below 2 for subnormal maxima).
TERSE_HOST_DEVICE TERSE_FORCEINLINE int norm_exponent(std::uint32_t max_abs_bits) noexcept
{
  if (max_abs_bits >= norm_unscaled_low && max_abs_bits < norm_unscaled_high) {
    return 0;
  }
  return 127 - static_cast<int>(max_abs_bits >> 23);  // in [-127, 127]
}

/// The stored norm from the pairwise total of squares of values scaled by 2^k.
TERSE_HOST_DEVICE TERSE_FORCEINLINE float norm_from_sum(float sum_of_squares, int k) noexcept
{
  const double norm = std::sqrt(static_cast<double>(sum_of_squares)) * pow2d(-k);
  return norm >= static_cast<double>(FLT_MAX) ? FLT_MAX : static_cast<float>(norm);
}

/// One bucket's mapping between values and fields, from its stored norm.
struct qsgd_rule {
  std::uint32_t levels = 0;  ///< s
  float norm = 0;            ///< N (on the wire)
  float pre = 1;             ///< exact power of two applied to |v| before scaling
  float scale = 0;           ///< s / (N * pre); 0 for a zero bucket
  float unit = 0;            ///< N / s, the value of one level

  /// Requires norm finite and >= 0.
  TERSE_HOST_DEVICE static qsgd_rule make(float norm, std::uint32_t levels) noexcept
  {
    qsgd_rule rule;
    rule.levels = levels;
    rule.norm = norm;
    if (norm > 0) {
      rule.pre = prescale_for(static_cast<double>(norm));
      rule.scale =
          static_cast<float>(static_cast<double>(levels) / (static_cast<double>(norm) * static_cast<double>(rule.pre)));
      rule.unit = static_cast<float>(static_cast<double>(norm) / static_cast<double>(levels));
    }
    return rule;
  }

  /// The field of v (|v| <= N) for dither u in (0, 1).
  TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t code(float v, float u) const noexcept
  {
    const std::uint32_t bits = float_bits(v);
    const float magnitude = mul_rn(bits_float(bits & 0x7fffffffu), pre);
    const std::uint32_t level = truncate_level(fma_rn(magnitude, scale, u), levels);
    return (level << 1) | (bits >> 31);
  }

  /// The value a field decodes to.
  TERSE_HOST_DEVICE TERSE_FORCEINLINE float value(std::uint32_t field) const noexcept
  {
    const float magnitude = mul_rn(static_cast<float>(field >> 1), unit);
    const float clipped = magnitude < norm ? magnitude : norm;
    return bits_float(float_bits(clipped) | (field << 31));
  }
};

/// Bits of a qsgd field for s levels: a sign and ceil(log2(s + 1)) bits.
constexpr unsigned qsgd_field_bits(std::uint32_t levels) noexcept
{
  unsigned bits = 1;
  while ((std::uint32_t{1} << (bits - 1)) <= levels) {
    ++bits;
  }
  return bits;
}

}  // namespace terse::detail

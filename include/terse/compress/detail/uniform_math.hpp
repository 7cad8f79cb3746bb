#pragma once
/// @file
/// The element-wise rule of `compress::uniform<Bits>`, shared by the host
/// loops and the CUDA kernels so both write the same bits.
///
/// A bucket with range [lo, hi] has L = 2^Bits - 1 levels of width
/// step = (hi - lo) / L. Value v goes to level
///     q = min(floor((v - lo) * L / (hi - lo) + u), L),   u the element's dither,
/// computed as d = fma(v, pre, -lo*pre), q = floor(fma(d, scale, u)) with
/// scale = L / ((hi - lo) * pre) (see prescale_for), and decodes to
/// min(lo + q * step, hi). E[decode] = v up to the dither resolution
/// (2^-17 of a step) and float rounding of the level (2^-24 of L steps).

#include <terse/compress/detail/quantizer_math.hpp>
#include <terse/core/config.hpp>

#include <cstdint>

namespace terse::detail {

/// One bucket's mapping between values and levels, derived from its stored
/// min and max alone, so an encoder and a decoder anywhere agree on it.
struct uniform_rule {
  std::uint32_t levels = 0;  ///< L = 2^bits - 1
  float lo = 0;              ///< the bucket's minimum (on the wire)
  float hi = 0;              ///< the bucket's maximum (on the wire)
  float pre = 1;             ///< exact power of two applied before scaling
  float plo = 0;             ///< lo * pre
  float scale = 0;           ///< L / ((hi - lo) * pre); 0 for a constant bucket
  float step = 0;            ///< (hi - lo) / L, the width of a level

  /// Requires lo <= hi, both finite.
  TERSE_HOST_DEVICE static uniform_rule make(float lo, float hi, std::uint32_t levels) noexcept
  {
    uniform_rule rule;
    rule.levels = levels;
    rule.lo = lo;
    rule.hi = hi;
    rule.plo = lo;
    // In double: hi - lo reaches 2 * FLT_MAX.
    const double range = static_cast<double>(hi) - static_cast<double>(lo);
    if (range > 0) {
      rule.pre = prescale_for(range);
      rule.plo = mul_rn(lo, rule.pre);
      rule.scale = static_cast<float>(static_cast<double>(levels) / (range * static_cast<double>(rule.pre)));
      rule.step = static_cast<float>(range / static_cast<double>(levels));
    }
    return rule;
  }

  /// The level of v (lo <= v <= hi) for dither u in (0, 1).
  TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t code(float v, float u) const noexcept
  {
    const float d = fma_rn(v, pre, -plo);  // (v - lo) * pre, never overflowing
    return truncate_level(fma_rn(d, scale, u), levels);
  }

  /// The value level q decodes to: lo + q * step, never above hi.
  TERSE_HOST_DEVICE TERSE_FORCEINLINE float value(std::uint32_t q) const noexcept
  {
    const float x = fma_rn(static_cast<float>(q), step, lo);
    return x < hi ? x : hi;
  }
};

/// -0 becomes +0 (min and max may meet either zero first; the wire must
/// not depend on which).
TERSE_HOST_DEVICE TERSE_FORCEINLINE float canonical_zero(float x) noexcept
{
  return x + 0.0f;
}

}  // namespace terse::detail

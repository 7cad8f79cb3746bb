#pragma once
/// @file
/// The factor CHOCO multiplies decoded messages by, so that an unbiased
/// codec becomes contractive. A codec with E‖C(v) − v‖² ≤ ω‖v‖² and
/// E[C(v)] = v gives E‖C(v)/(1 + ω) − v‖² ≤ (1 − 1/(1 + ω))‖v‖². The bounds,
/// per bucket of B values (n values in all):
///
/// | codec | ω |
/// |---|---|
/// | qsgd<s> | min(B/s², √B/s) (Alistarh et al.) |
/// | terngrad | √B − 1 (s = max|v| ≤ ‖v‖, ‖v‖₁ ≤ √B‖v‖) |
/// | uniform<b> | B/(2L²), L = 2^b − 1 (step²/4 per value, range² ≤ 2‖v‖²) |
/// | randomk, unbiased | n/k − 1 |
/// | a user codec with `double variance_bound(std::size_t n) const` | its answer |
/// | every other codec | 0: biased codecs are used as they are |

#include <terse/compress/qsgd.hpp>
#include <terse/compress/randomk.hpp>
#include <terse/compress/terngrad.hpp>
#include <terse/compress/uniform.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace terse::detail {

inline double bucket_values(double bucket, std::size_t n) noexcept
{
  return std::max(1.0, std::min(bucket, static_cast<double>(n)));
}

template <std::uint32_t Levels>
double builtin_variance(const compress::qsgd<Levels>& codec, std::size_t n)
{
  const double b = bucket_values(static_cast<double>(codec.bucket), n);
  const double s = Levels;
  return std::min(b / (s * s), std::sqrt(b) / s);
}

inline double builtin_variance(const compress::terngrad& codec, std::size_t n)
{
  return std::sqrt(bucket_values(static_cast<double>(codec.bucket), n)) - 1.0;
}

template <unsigned Bits>
double builtin_variance(const compress::uniform<Bits>& codec, std::size_t n)
{
  const double levels = static_cast<double>((1u << Bits) - 1u);
  return bucket_values(static_cast<double>(codec.bucket), n) / (2.0 * levels * levels);
}

inline double builtin_variance(const compress::randomk& codec, std::size_t n)
{
  if (!codec.unbiased || n == 0) {
    return 0.0;
  }
  return static_cast<double>(n) / static_cast<double>(codec.wire_count(n)) - 1.0;
}

/// Biased codecs: contractive as they are.
template <class C>
double builtin_variance(const C&, std::size_t)
{
  return 0.0;
}

template <class C>
double codec_variance(const C& codec, std::size_t n)
{
  if constexpr (requires { codec.variance_bound(n); }) {
    return static_cast<double>(codec.variance_bound(n));
  } else {
    return builtin_variance(codec, n);
  }
}

/// `requested` when positive, else 1/(1 + ω).
template <class C>
double choco_scale(const C& codec, std::size_t n, double requested)
{
  return requested > 0 ? requested : 1.0 / (1.0 + codec_variance(codec, n));
}

}  // namespace terse::detail

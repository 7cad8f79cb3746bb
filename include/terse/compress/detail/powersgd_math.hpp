#pragma once
/// @file
/// PowerSGD's small rules, shared by the host codec and the CUDA path: how a
/// bucket of n values is viewed as a matrix, the shared random numbers Q
/// starts from, the test that finds NaN and Inf, and the bounds that keep a
/// decoded approximation finite.

#include <terse/compress/powersgd_shape.hpp>
#include <terse/core/config.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>

#include <cstdint>
#include <limits>

namespace terse::detail {

/// The public shape type (compress::powersgd_shape), by its internal name.
using powersgd_shape = compress::powersgd_shape;

/// ⌈√n⌉ for any 64-bit n, exactly (no floating point).
TERSE_HOST_DEVICE constexpr std::uint64_t ceil_sqrt(std::uint64_t n) noexcept
{
  if (n < 2) {
    return n;
  }
  // Largest r with r² ≤ n, by bisection on r ≤ n / r (no overflow).
  std::uint64_t low = 1;
  std::uint64_t high = std::uint64_t{1} << 32;
  while (low + 1 < high) {
    const std::uint64_t mid = low + (high - low) / 2;
    if (mid <= n / mid) {
      low = mid;
    } else {
      high = mid;
    }
  }
  return low * low == n ? low : low + 1;
}

TERSE_HOST_DEVICE constexpr powersgd_shape powersgd_shape_of(std::uint64_t n, std::uint64_t rank) noexcept
{
  powersgd_shape s;
  s.n = n;
  if (n == 0) {
    return s;
  }
  s.p = ceil_sqrt(n);
  s.m = (n + s.p - 1) / s.p;
  s.k = rank < s.m ? rank : s.m;
  s.full_rows = n / s.p;
  s.tail = n - s.full_rows * s.p;
  return s;
}

/// A declared rows×cols matrix: no padding, k = min(rank, rows, cols).
TERSE_HOST_DEVICE constexpr powersgd_shape powersgd_matrix_shape(std::uint64_t rows, std::uint64_t cols,
                                                                 std::uint64_t rank) noexcept
{
  powersgd_shape s;
  s.n = rows * cols;
  s.m = rows;
  s.p = cols;
  const std::uint64_t smaller = rows < cols ? rows : cols;
  s.k = rank < smaller ? rank : smaller;
  s.full_rows = rows;
  s.tail = 0;
  return s;
}

/// Element `index` (= row·k + column) of a freshly drawn Q: uniform in
/// [−0.5, 0.5) from the stream every rank shares, so all ranks start (and
/// re-seed a zero column) with the same Q.
TERSE_HOST_DEVICE TERSE_FORCEINLINE float powersgd_seed_value(const random_stream& shared, std::uint64_t index) noexcept
{
  return shared.uniform(index) - 0.5f;
}

/// One word per value whose bit 31 ends up set when the value is NaN or
/// ±Inf (exponent all ones): OR these over a buffer and test the sign bit.
/// Integer AND/ADD/OR only, so it vectorises on any SSE2 machine.
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t non_finite_bit(float value) noexcept
{
  return (float_bits(value) & 0x7f800000u) + 0x00800000u;
}
inline constexpr std::uint32_t non_finite_mask = 0x80000000u;

/// A column of P whose part orthogonal to the earlier columns is at most
/// this fraction of its length is treated as dependent and set to zero (its
/// Q column becomes zero and is re-seeded at the next step).
inline constexpr double powersgd_dependent_tolerance = 1e-6;

/// Decoders accept factors only when max_i ‖P_i‖₂ · max_j ‖Q_j‖₂ (row norms)
/// is at most this: by Cauchy–Schwarz every decoded value |Σ_c P_ic Q_jc| is
/// then at most FLT_MAX / 2, so decoding never overflows.
inline constexpr double powersgd_max_product = 0.5 * static_cast<double>(std::numeric_limits<float>::max());

/// Encoders keep their factors within half of what decoders accept.
inline constexpr double powersgd_encode_product = 0.5 * powersgd_max_product;

/// Below this largest magnitude the float products M·Q̂ and Mᵀ·P̂ cannot
/// overflow (|M| · √n < 2^72 ≪ FLT_MAX for any bucket that fits in memory);
/// encode pre-scales larger inputs by a power of two.
inline constexpr float powersgd_unscaled_limit = 0x1p40f;

}  // namespace terse::detail

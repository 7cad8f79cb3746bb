#pragma once
/// @file
/// `compress::powersgd_shape`: the matrix PowerSGD works on and the rank it
/// uses there, as `powersgd::shape(n)` (and `powersgd::shapes(ctx)` for a
/// layout with declared tensor shapes) report it.

#include <terse/core/config.hpp>

#include <cstdint>

namespace terse::compress {

/// An m×p row-major matrix M and the rank k used on it.
///
/// - A declared matrix tensor (layout::set_shapes): m = rows, p = cols,
///   n = m·p, k = min(rank, m, p); full_rows = m and tail = 0.
/// - Fallback, a flat run of n values: p = ⌈√n⌉, m = ⌈n/p⌉ (so m ≤ p and
///   m·p − n < p), k = min(rank, m); the first `full_rows` rows are the
///   values as they lie in memory, and the last row, when `tail` > 0, holds
///   the remaining `tail` values followed by zeros.
struct powersgd_shape {
  std::uint64_t n = 0;          ///< values
  std::uint64_t m = 0;          ///< rows of M (and of P)
  std::uint64_t p = 0;          ///< columns of M (rows of Q)
  std::uint64_t k = 0;          ///< the rank used
  std::uint64_t full_rows = 0;  ///< n / p
  std::uint64_t tail = 0;       ///< n − full_rows·p: values in the partial last row

  /// Floats in the two factors P (m×k) and Q (p×k).
  TERSE_HOST_DEVICE constexpr std::uint64_t factor_count() const noexcept { return k * (m + p); }
  /// The wire's 64-bit shape word: m in the high half, p in the low half.
  TERSE_HOST_DEVICE constexpr std::uint64_t shape_word() const noexcept { return m << 32 | (p & 0xffffffffu); }
};

}  // namespace terse::compress

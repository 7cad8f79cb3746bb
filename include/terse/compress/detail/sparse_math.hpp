#pragma once
/// @file
/// Element-wise rules shared by the sparsifiers (topk, threshold, dgc) on the
/// host and in CUDA kernels, so both backends select the same elements and
/// write the same bytes.
///
/// Magnitudes are compared as *keys*: the float's bits with the sign cleared.
/// For finite values (and ±0, denormals) the unsigned order of keys is the
/// order of |v|; every NaN or ±Inf has a key >= `non_finite_key`, above every
/// finite value, so any threshold <= `non_finite_key` lets all non-finite
/// values through the filter, where the encoder sees and rejects them.

#include <terse/core/config.hpp>
#include <terse/core/numeric.hpp>

#include <cstddef>
#include <cstdint>

namespace terse::detail {

/// Bit pattern of +Inf: keys at or above it belong to NaN or ±Inf.
inline constexpr std::uint32_t non_finite_key = 0x7f800000u;

/// Sparse payloads carry 32-bit indices, so a bucket holds at most 2^32 values.
inline constexpr std::uint64_t max_sparse_elements = std::uint64_t{1} << 32;

/// The magnitude key of `value`: |value|'s bits (sign cleared).
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t magnitude_key(float value) noexcept
{
  return float_bits(value) & 0x7fffffffu;
}

TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t magnitude_key_of_bits(std::uint32_t bits) noexcept
{
  return bits & 0x7fffffffu;
}

/// k = ceil(density * n), clamped to [1, n] for n > 0 (0 for n = 0). The
/// density is a float, so a decimal one is a hair off (0.1f is
/// 0.100000001...): a product within float rounding (a relative 2^-23)
/// above an integer counts as that integer, so 0.1f on 1,000 values gives
/// 100, not 101. Computed in double, the same on every backend and in the
/// decoder (wire version 2; version 1 took the plain ceiling).
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint64_t topk_count(float density, std::uint64_t n) noexcept
{
  if (n == 0) {
    return 0;
  }
  const double exact = static_cast<double>(density) * static_cast<double>(n);
  const double product = exact - exact * 0x1p-23;
  // ceil by hand (host and device alike): truncate, then round up a fraction.
  auto k = static_cast<std::uint64_t>(product);
  if (static_cast<double>(k) < product) {
    ++k;
  }
  if (k < 1) {
    k = 1;
  }
  return k > n ? n : k;
}

/// A density is usable when it lies in (0, 1] (NaN fails both tests).
TERSE_HOST_DEVICE TERSE_FORCEINLINE bool valid_density(float density) noexcept
{
  return density > 0.0f && density <= 1.0f;
}

/// A threshold is usable when it is finite and not negative. -0 counts as 0.
TERSE_HOST_DEVICE TERSE_FORCEINLINE bool valid_threshold(float tau) noexcept
{
  return tau >= 0.0f && magnitude_key(tau) < non_finite_key;
}

/// DGC's accepted band around k: counts in [k - slack, k + slack] are sent as
/// they are; anything else is refined to exactly k. slack = floor(tol * k).
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint64_t dgc_slack(std::uint64_t k, float tolerance) noexcept
{
  const double s = static_cast<double>(tolerance) * static_cast<double>(k);
  const auto slack = static_cast<std::uint64_t>(s);
  return slack >= k ? k - (k > 0 ? 1 : 0) : slack;  // keep at least one value when k > 0
}

/// A tolerance is usable in [0, 1).
TERSE_HOST_DEVICE TERSE_FORCEINLINE bool valid_tolerance(float tolerance) noexcept
{
  return tolerance >= 0.0f && tolerance < 1.0f;
}

/// The sample position of draw `bits` in [0, n) (n <= 2^32): multiply-shift,
/// so no division and the same result on every backend.
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint64_t sample_position(std::uint32_t bits, std::uint64_t n) noexcept
{
  return (static_cast<std::uint64_t>(bits) * n) >> 32;
}

/// DGC's sample size: ceil(fraction * n), at least 1024, at most n. The
/// host and device encoders both use it, so they sample the same positions.
inline std::uint64_t dgc_sample_size(std::uint64_t n, float fraction) noexcept
{
  const double wanted = static_cast<double>(fraction) * static_cast<double>(n);
  auto m = static_cast<std::uint64_t>(wanted);
  if (static_cast<double>(m) < wanted) {
    ++m;
  }
  m = m < 1024 ? 1024 : m;
  return m > n ? n : m;
}

/// The rank (1-based, from the top) of DGC's threshold in an m-value
/// sample: ceil(k m / n), within [1, m].
inline std::uint64_t dgc_sample_rank(std::uint64_t k, std::uint64_t m, std::uint64_t n) noexcept
{
  const double wanted = static_cast<double>(k) * static_cast<double>(m) / static_cast<double>(n);
  auto r = static_cast<std::uint64_t>(wanted);
  if (static_cast<double>(r) < wanted) {
    ++r;
  }
  r = r < 1 ? 1 : r;
  return r > m ? m : r;
}

/// A cheap integer hash (lowbias32) that jitters strided sample positions so a
/// periodic structure in the data cannot line up with the stride.
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t sample_jitter(std::uint32_t x) noexcept
{
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

/// Body bytes of a sparse payload with `count` (index, value) pairs.
TERSE_HOST_DEVICE TERSE_FORCEINLINE constexpr std::uint64_t sparse_body_bytes(std::uint64_t count) noexcept
{
  return count * 8u;
}

}  // namespace terse::detail

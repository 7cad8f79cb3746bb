#pragma once
/// @file
/// Sizes shared by every bucketed, bit-packed codec (one definition, so
/// codec families can be included together).

#include <terse/core/config.hpp>

#include <cstdint>

namespace terse::detail {

/// Buckets of `bucket` values covering n values (the last may be short).
TERSE_HOST_DEVICE constexpr std::uint64_t bucket_count(std::uint64_t n, std::uint64_t bucket) noexcept
{
  return n == 0 ? 0 : (n - 1) / bucket + 1;
}

/// Bytes holding n fields of `bits` bits (the last byte zero-padded).
TERSE_HOST_DEVICE constexpr std::uint64_t packed_bytes(std::uint64_t n, unsigned bits) noexcept
{
  return (n / 8) * bits + ((n % 8) * bits + 7) / 8;  // n*bits/8 rounded up, without overflowing n*bits
}

}  // namespace terse::detail

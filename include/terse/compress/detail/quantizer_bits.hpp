#pragma once
/// @file
/// Bit fields of the quantizers' code region: element i's b-bit code sits
/// at bits [i*b, i*b + b) of a little-endian bit stream (bit 0 is the least
/// significant bit of byte 0), so a field may straddle two bytes when b
/// does not divide 8. Bits past the last field of the last byte are zero.

#include <terse/compress/detail/packing.hpp>
#include <terse/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace terse::detail {

/// Writes the low `bits` bits of `code` at bit `bitpos`, leaving every other
/// bit as it was.
TERSE_HOST_DEVICE TERSE_FORCEINLINE void put_field(std::uint8_t* base, std::uint64_t bitpos, unsigned bits,
                                                   std::uint32_t code) noexcept
{
  const std::uint64_t byte = bitpos >> 3;
  const unsigned shift = static_cast<unsigned>(bitpos & 7u);
  const std::uint32_t mask = ((1u << bits) - 1u) << shift;
  const std::uint32_t value = (code << shift) & mask;
  base[byte] = static_cast<std::uint8_t>((base[byte] & ~mask) | value);
  if (shift + bits > 8) {
    base[byte + 1] = static_cast<std::uint8_t>((base[byte + 1] & ~(mask >> 8)) | (value >> 8));
  }
}

/// Reads the `bits`-bit field at bit `bitpos` (touching only its bytes).
TERSE_HOST_DEVICE TERSE_FORCEINLINE std::uint32_t get_field(const std::uint8_t* base, std::uint64_t bitpos,
                                                            unsigned bits) noexcept
{
  const std::uint64_t byte = bitpos >> 3;
  const unsigned shift = static_cast<unsigned>(bitpos & 7u);
  std::uint32_t value = static_cast<std::uint32_t>(base[byte]) >> shift;
  if (shift + bits > 8) {
    value |= static_cast<std::uint32_t>(base[byte + 1]) << (8 - shift);
  }
  return value & ((1u << bits) - 1u);
}

/// Packs 64 codes (each below 2^bits) into 8*bits bytes at `out`.
inline void pack64(const std::uint8_t codes[64], unsigned bits, std::uint8_t* out) noexcept
{
  if (bits == 8) {
    std::memcpy(out, codes, 64);
    return;
  }
  // Eight codes make `bits` whole bytes: gather them in a 64-bit word.
  for (unsigned octet = 0; octet < 8; ++octet) {
    std::uint64_t word = 0;
    for (unsigned k = 0; k < 8; ++k) {
      word |= static_cast<std::uint64_t>(codes[octet * 8 + k]) << (k * bits);
    }
    for (unsigned b = 0; b < bits; ++b) {
      out[octet * bits + b] = static_cast<std::uint8_t>(word >> (8 * b));
    }
  }
}

/// The eight `bits`-bit codes at out (byte aligned) as a 64-bit word.
inline std::uint64_t load_octet(const std::uint8_t* at, unsigned bits) noexcept
{
  std::uint64_t word = 0;
  for (unsigned b = 0; b < bits; ++b) {
    word |= static_cast<std::uint64_t>(at[b]) << (8 * b);
  }
  return word;
}

}  // namespace terse::detail

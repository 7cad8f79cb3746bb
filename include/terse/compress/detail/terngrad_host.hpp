#pragma once
/// @file
/// Host loops of `compress::terngrad`: per bucket an integer max pass (the
/// scale, and the non-finite check, in one), then a quantising pass over
/// the same bucket (in L1). The AVX2 path (built with AVX2 and FMA, see
/// quantizer_simd.hpp) runs Philox on 8 blocks at once (64 draws) and codes
/// 8 values per step, for buckets that are a multiple of 4 values; the
/// scalar path handles everything. Both follow
/// terngrad_math.hpp, so they write identical bytes (tested).

#include <terse/compress/detail/quantizer_draws.hpp>
#include <terse/compress/detail/quantizer_simd.hpp>
#include <terse/compress/detail/signs_common.hpp>
#include <terse/compress/detail/terngrad_math.hpp>
#include <terse/core/error.hpp>
#include <terse/core/philox.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace terse::detail {

/// Where the terngrad encoder reads from. Plain: p = g. Residual:
/// p = g + e_old, and e_new receives p - decode(p).
struct terngrad_io {
  const float* g = nullptr;
  const float* e_old = nullptr;  ///< null unless residual
  float* e_new = nullptr;        ///< null unless residual
};

/// The 64 draws of `group` (quantizer_draws.hpp layout), widened to 32 bits.
inline void terngrad_group_scalar(const random_stream& stream, std::uint64_t group, std::uint32_t* out)
{
  std::uint16_t draws[64];
  draw_group16(stream, group, draws);
  for (int e = 0; e < 64; ++e) {
    out[e] = draws[e];
  }
}

#if TERSE_QUANTIZER_AVX2
inline constexpr bool terngrad_has_avx2 = true;

/// The 64 draws of `group`, in element order, from the quantizers' 8-block
/// Philox (AVX2, or AVX-512 where compiled for it): word w of the 8 blocks
/// holds elements 16w .. 16w+7 (low halves) and 16w+8 .. 16w+15 (high).
inline void terngrad_group_draws(const philox8_keys& keys, std::uint64_t group, std::uint32_t* out)
{
  __m256i words[4];
  philox8(keys, group, words);
  const __m256i low16 = _mm256_set1_epi32(0xffff);
  for (int w = 0; w < 4; ++w) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * w), _mm256_and_si256(words[w], low16));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * w + 8), _mm256_srli_epi32(words[w], 16));
  }
}
#else
inline constexpr bool terngrad_has_avx2 = false;
#endif

/// Draws of elements j0 .. j0 + count - 1 (count <= 64) into out[0..count),
/// `fill(group, to)` writing the 64 draws of a group.
template <class Fill>
void terngrad_draws(Fill fill, std::uint64_t j0, std::size_t count, std::uint32_t* out)
{
  const std::size_t skip = static_cast<std::size_t>(j0 % draws_per_group);
  if (skip == 0 && count == draws_per_group) {
    fill(j0 / draws_per_group, out);
    return;
  }
  std::uint32_t two[2 * draws_per_group];
  fill(j0 / draws_per_group, two);
  if (skip + count > draws_per_group) {
    fill(j0 / draws_per_group + 1, two + draws_per_group);
  }
  std::memcpy(out, two + skip, count * sizeof(std::uint32_t));
}

[[noreturn]] inline void terngrad_throw_non_finite(std::size_t bucket_index)
{
  TERSE_FAIL(errc::non_finite, "terngrad: input bucket " + std::to_string(bucket_index) + " holds NaN or Inf");
}

/// First pass over a bucket: max |p| as bits (p = g + e_old stored to e_new
/// when residual). Portable.
template <bool Residual>
std::uint32_t terngrad_max_scalar(terngrad_io io, std::size_t start, std::size_t count)
{
  std::uint32_t top = 0;
  for (std::size_t at = start; at < start + count; ++at) {
    float p = io.g[at];
    if constexpr (Residual) {
      p = p + io.e_old[at];
      io.e_new[at] = p;
    }
    const std::uint32_t m = terngrad_magnitude_bits(p);
    top = m > top ? m : top;
  }
  return top;
}

/// Portable encoder for any bucket size: ceil(n/B) scales at `scales`,
/// ceil(n/4) bytes of codes at `codes`.
template <bool Residual>
void terngrad_encode_scalar(terngrad_io io, const random_stream& stream, std::uint64_t offset, std::size_t n,
                            std::size_t bucket, std::byte* scales, std::byte* codes)
{
  auto* packed = reinterpret_cast<unsigned char*>(codes);
  std::memset(packed, 0, packed_bytes(n, 2));
  const float* p = Residual ? io.e_new : io.g;
  std::uint32_t draws[draws_per_group];
  for (std::size_t start = 0, b = 0; start < n; start += bucket, ++b) {
    const std::size_t count = n - start < bucket ? n - start : bucket;
    const std::uint32_t top = terngrad_max_scalar<Residual>(io, start, count);
    if (!terngrad_finite_bits(top)) {
      terngrad_throw_non_finite(b);
    }
    const float scale = bits_float(top);
    std::memcpy(scales + 4 * b, &scale, sizeof scale);
    if (top == 0) {
      continue;  // all zeros: every code is 0 and p - 0 = p
    }
    for (std::size_t c = 0; c < count; c += draws_per_group) {
      const std::size_t len = count - c < draws_per_group ? count - c : draws_per_group;
      terngrad_draws([&](std::uint64_t group, std::uint32_t* to) { terngrad_group_scalar(stream, group, to); },
                     offset + start + c, len, draws);
      for (std::size_t i = 0; i < len; ++i) {
        const std::size_t at = start + c + i;
        const unsigned code = terngrad_code(p[at], scale, draws[i]);
        packed[at / 4] = static_cast<unsigned char>(packed[at / 4] | (code << (2 * (at % 4))));
        if constexpr (Residual) {
          io.e_new[at] = p[at] - terngrad_value(scale, code);
        }
      }
    }
  }
}

/// Bytes of codes with a code 3 (never written): nonzero when any.
inline unsigned terngrad_invalid_codes(const std::byte* codes, std::size_t bytes) noexcept
{
  std::uint64_t bad = 0;
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, codes + i, sizeof word);
    bad |= word & (word >> 1) & 0x5555555555555555ull;
  }
  for (; i < bytes; ++i) {
    const auto byte = static_cast<unsigned>(codes[i]);
    bad |= byte & (byte >> 1) & 0x55u;
  }
  return bad != 0 ? 1u : 0u;
}

/// Portable decoder: acc[i] += s, -s or 0.
inline void terngrad_decode_scalar(const std::byte* scales, const std::byte* codes, std::size_t n, std::size_t bucket,
                                   float* acc)
{
  const auto* packed = reinterpret_cast<const unsigned char*>(codes);
  for (std::size_t start = 0, b = 0; start < n; start += bucket, ++b) {
    const std::size_t end = n - start < bucket ? n : start + bucket;
    float scale;
    std::memcpy(&scale, scales + 4 * b, sizeof scale);
    for (std::size_t at = start; at < end; ++at) {
      acc[at] += terngrad_value(scale, (packed[at / 4] >> (2 * (at % 4))) & 3u);
    }
  }
}

#if TERSE_QUANTIZER_AVX2
/// spread[x]: the 8 bits of x moved to the even bits of 16 (bit e -> 2e).
inline constexpr std::array<std::uint16_t, 256> terngrad_spread = [] {
  std::array<std::uint16_t, 256> table{};
  for (unsigned x = 0; x < 256; ++x) {
    unsigned spread = 0;
    for (unsigned e = 0; e < 8; ++e) {
      spread |= ((x >> e) & 1u) << (2 * e);
    }
    table[x] = static_cast<std::uint16_t>(spread);
  }
  return table;
}();

/// AVX2 encoder; needs bucket % 4 == 0 so every bucket starts on a byte.
template <bool Residual>
void terngrad_encode_avx2(terngrad_io io, const random_stream& stream, std::uint64_t offset, std::size_t n,
                          std::size_t bucket, std::byte* scales, std::byte* codes)
{
  auto* packed = reinterpret_cast<unsigned char*>(codes);
  const float* p_all = Residual ? io.e_new : io.g;
  const __m256i magnitude_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256 abs_mask = _mm256_castsi256_ps(magnitude_mask);
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256 zero = _mm256_setzero_ps();
  const __m256 step = _mm256_set1_ps(0x1p-16f);
  const __m256 half_step = _mm256_set1_ps(0x1p-17f);
  alignas(32) std::uint32_t draws[draws_per_group];
  const philox8_keys keys(stream);
  const auto fill = [&keys](std::uint64_t group, std::uint32_t* to) { terngrad_group_draws(keys, group, to); };
  for (std::size_t start = 0, b = 0; start < n; start += bucket, ++b) {
    const std::size_t count = n - start < bucket ? n - start : bucket;
    // Pass 1: max |p| as integers.
    __m256i top8 = _mm256_setzero_si256();
    std::size_t i = 0;
    for (; i + 8 <= count; i += 8) {
      __m256 x = _mm256_loadu_ps(io.g + start + i);
      if constexpr (Residual) {
        x = _mm256_add_ps(x, _mm256_loadu_ps(io.e_old + start + i));
        _mm256_storeu_ps(io.e_new + start + i, x);
      }
      top8 = _mm256_max_epu32(top8, _mm256_and_si256(_mm256_castps_si256(x), magnitude_mask));
    }
    alignas(32) std::uint32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), top8);
    std::uint32_t top = terngrad_max_scalar<Residual>(io, start + i, count - i);
    for (std::uint32_t lane : lanes) {
      top = lane > top ? lane : top;
    }
    if (!terngrad_finite_bits(top)) {
      terngrad_throw_non_finite(b);
    }
    const float scale = bits_float(top);
    std::memcpy(scales + 4 * b, &scale, sizeof scale);
    unsigned char* out = packed + start / 4;
    if (top == 0) {
      std::memset(out, 0, packed_bytes(count, 2));
      continue;
    }
    // Pass 2 (the bucket is in L1 now): codes, 64 draws at a time.
    const __m256 vscale = _mm256_set1_ps(scale);
    for (std::size_t c = 0; c < count; c += draws_per_group) {
      const std::size_t len = count - c < draws_per_group ? count - c : draws_per_group;
      terngrad_draws(fill, offset + start + c, len, draws);
      const float* p = p_all + start + c;
      std::size_t e = 0;
      for (; e + 8 <= len; e += 8) {
        const __m256 x = _mm256_loadu_ps(p + e);
        const __m256 u = _mm256_add_ps(
            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(draws + e))), step),
            half_step);
        const __m256 r = _mm256_div_ps(_mm256_and_ps(x, abs_mask), vscale);
        const __m256 fire = _mm256_cmp_ps(u, r, _CMP_LT_OQ);
        const __m256 negative = _mm256_cmp_ps(x, zero, _CMP_LT_OQ);
        const auto f = static_cast<unsigned>(_mm256_movemask_ps(fire));
        const auto s = static_cast<unsigned>(_mm256_movemask_ps(negative));
        const unsigned pair = terngrad_spread[f & ~s & 0xffu] | (terngrad_spread[f & s] << 1);
        out[(c + e) / 4] = static_cast<unsigned char>(pair);
        out[(c + e) / 4 + 1] = static_cast<unsigned char>(pair >> 8);
        if constexpr (Residual) {
          const __m256 w = _mm256_and_ps(fire, _mm256_xor_ps(vscale, _mm256_and_ps(negative, sign_bit)));
          _mm256_storeu_ps(io.e_new + start + c + e, _mm256_sub_ps(x, w));
        }
      }
      // Fewer than 8 left (only at the end of a bucket): whole bytes, zero padded.
      unsigned tail = 0;
      for (std::size_t t = e; t < len; ++t) {
        const unsigned code = terngrad_code(p[t], scale, draws[t]);
        tail |= code << (2 * (t - e));
        if constexpr (Residual) {
          io.e_new[start + c + t] = p[t] - terngrad_value(scale, code);
        }
      }
      if (e < len) {
        out[(c + e) / 4] = static_cast<unsigned char>(tail);
        if (len - e > 4) {
          out[(c + e) / 4 + 1] = static_cast<unsigned char>(tail >> 8);
        }
      }
    }
  }
}

/// AVX2 decoder; needs bucket % 4 == 0.
inline void terngrad_decode_avx2(const std::byte* scales, const std::byte* codes, std::size_t n, std::size_t bucket,
                                 float* acc)
{
  const auto* packed = reinterpret_cast<const unsigned char*>(codes);
  const __m256i plus = _mm256_setr_epi32(1 << 0, 1 << 2, 1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 12, 1 << 14);
  const __m256i minus = _mm256_slli_epi32(plus, 1);
  for (std::size_t start = 0, b = 0; start < n; start += bucket, ++b) {
    const std::size_t count = n - start < bucket ? n - start : bucket;
    float scale;
    std::memcpy(&scale, scales + 4 * b, sizeof scale);
    const __m256 vplus = _mm256_set1_ps(scale);
    const __m256 vminus = _mm256_set1_ps(-scale);
    const unsigned char* in = packed + start / 4;
    float* a = acc + start;
    std::size_t i = 0;
    for (; i + 8 <= count; i += 8) {
      const __m256i pair = _mm256_set1_epi32(in[i / 4] | (in[i / 4 + 1] << 8));
      const __m256i is_plus = _mm256_cmpeq_epi32(_mm256_and_si256(pair, plus), plus);
      const __m256i is_minus = _mm256_cmpeq_epi32(_mm256_and_si256(pair, minus), minus);
      const __m256 w = _mm256_or_ps(_mm256_and_ps(_mm256_castsi256_ps(is_plus), vplus),
                                    _mm256_and_ps(_mm256_castsi256_ps(is_minus), vminus));
      _mm256_storeu_ps(a + i, _mm256_add_ps(_mm256_loadu_ps(a + i), w));
    }
    for (; i < count; ++i) {
      a[i] += terngrad_value(scale, (in[i / 4] >> (2 * (i % 4))) & 3u);
    }
  }
}
#endif

/// Encoder body: the fastest path this build has for `bucket`.
template <bool Residual>
void terngrad_encode_body(terngrad_io io, const random_stream& stream, std::uint64_t offset, std::size_t n,
                          std::size_t bucket, std::byte* scales, std::byte* codes)
{
#if TERSE_QUANTIZER_AVX2
  if (bucket % 4 == 0) {
    terngrad_encode_avx2<Residual>(io, stream, offset, n, bucket, scales, codes);
    return;
  }
#endif
  terngrad_encode_scalar<Residual>(io, stream, offset, n, bucket, scales, codes);
}

/// Decoder body (after validation): the fastest path this build has.
inline void terngrad_decode_body(const std::byte* scales, const std::byte* codes, std::size_t n, std::size_t bucket,
                                 float* acc)
{
#if TERSE_QUANTIZER_AVX2
  if (bucket % 4 == 0) {
    terngrad_decode_avx2(scales, codes, n, bucket, acc);
    return;
  }
#endif
  terngrad_decode_scalar(scales, codes, n, bucket, acc);
}

}  // namespace terse::detail

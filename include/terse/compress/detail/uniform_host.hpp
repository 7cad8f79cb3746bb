#pragma once
/// @file
/// Host loops of `compress::uniform<Bits>` (and of `adaptive`, which sends
/// uniform bodies): the per-bucket min/max pass, the rule on eight lanes,
/// and the body encoder, validator and decoder.
///
/// Body (after the 24-byte header), for n values in buckets of B:
///     scales  ceil(n/B) pairs of little-endian floats (min, max)
///     fields  n fields of Bits bits, packed little-endian (quantizer_bits.hpp),
///             the last byte zero-padded: ceil(n*Bits/8) bytes

#include <terse/compress/detail/packing.hpp>
#include <terse/compress/detail/quantizer_engine.hpp>
#include <terse/compress/detail/quantizer_simd.hpp>
#include <terse/compress/detail/uniform_math.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace terse::detail {

/// uniform_rule with the lane-parallel versions the engine wants.
template <unsigned Bits>
struct uniform_host_rule {
  static constexpr unsigned bits = Bits;
  uniform_rule rule;

  std::uint32_t code(float v, float u) const noexcept { return rule.code(v, u); }
  float value(std::uint32_t q) const noexcept { return rule.value(q); }

#if TERSE_QUANTIZER_AVX2
  __m256 pre8, neg_plo8, scale8, lo8, hi8, step8;
  __m256i levels8;

  explicit uniform_host_rule(const uniform_rule& r) noexcept
      : rule(r),
        pre8(_mm256_set1_ps(r.pre)),
        neg_plo8(_mm256_set1_ps(-r.plo)),
        scale8(_mm256_set1_ps(r.scale)),
        lo8(_mm256_set1_ps(r.lo)),
        hi8(_mm256_set1_ps(r.hi)),
        step8(_mm256_set1_ps(r.step)),
        levels8(_mm256_set1_epi32(static_cast<int>(r.levels)))
  {
  }

  /// Levels of eight values. Packing only (not Residual) 8-bit levels
  /// leaves the clamp at 255 to the saturating pack, one op fewer.
  template <bool Residual>
  TERSE_FORCEINLINE __m256i code8(__m256 v, __m256 u) const noexcept
  {
    const __m256 d = _mm256_fmadd_ps(v, pre8, neg_plo8);
    const __m256i level = _mm256_cvttps_epi32(_mm256_fmadd_ps(d, scale8, u));
    if constexpr (Bits == 8 && !Residual) {
      return level;  // at most 256, which store_fields64 saturates to 255
    } else {
      return _mm256_min_epi32(level, levels8);
    }
  }

  TERSE_FORCEINLINE __m256 value8(__m256i q) const noexcept
  {
    return _mm256_min_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(q), step8, lo8), hi8);
  }

#if TERSE_QUANTIZER_AVX512
  /// code8 and value8 on sixteen lanes (from the eight-lane constants).
  static constexpr bool sixteen_lanes = true;

  template <bool Residual>
  TERSE_FORCEINLINE __m512i code16(__m512 v, __m512 u) const noexcept
  {
    const __m512 d = _mm512_fmadd_ps(v, wide(pre8), wide(neg_plo8));
    const __m512i level = _mm512_maskz_cvttps_epi32(0xFFFF, _mm512_fmadd_ps(d, wide(scale8), u));
    if constexpr (Bits == 8 && !Residual) {
      return level;  // at most 256, which the unsigned saturating store makes 255
    } else {
      return _mm512_maskz_min_epi32(0xFFFF, level,
                                    _mm512_maskz_broadcast_i32x4(0xFFFF, _mm256_castsi256_si128(levels8)));
    }
  }

  TERSE_FORCEINLINE __m512 value16(__m512i q) const noexcept
  {
    return _mm512_maskz_min_ps(0xFFFF, _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, q), wide(step8), wide(lo8)),
                               wide(hi8));
  }

  static TERSE_FORCEINLINE __m512 wide(__m256 x) noexcept
  {
    return _mm512_maskz_broadcast_f32x4(0xFFFF, _mm256_castps256_ps128(x));
  }
#endif
#else
  explicit uniform_host_rule(const uniform_rule& r) noexcept : rule(r)
  {
  }
#endif
};

/// A bucket's min and max, and whether every value was finite.
struct value_range {
  float lo = 0;
  float hi = 0;
  bool finite = true;
};

template <bool Residual>
value_range min_max_portable(quantizer_source src, std::size_t count) noexcept
{
  float lo = std::numeric_limits<float>::infinity();
  float hi = -lo;
  bool bad = false;
  for (std::size_t i = 0; i < count; ++i) {
    const float p = source_value<Residual>(src, i);
    lo = p < lo ? p : lo;
    hi = p > hi ? p : hi;
    bad |= (p - p) != 0.0f;  // NaN for Inf and NaN
  }
  return {canonical_zero(lo), canonical_zero(hi), !bad};
}

#if TERSE_QUANTIZER_AVX2
template <bool Residual>
TERSE_FORCEINLINE __m256 load_source8(const quantizer_source& src, std::size_t at) noexcept
{
  __m256 p = _mm256_loadu_ps(src.g + at);
  if constexpr (Residual) {
    p = _mm256_add_ps(p, _mm256_loadu_ps(src.e_old + at));
  }
  return p;
}

template <bool Residual>
value_range min_max_avx2(quantizer_source src, std::size_t count) noexcept
{
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  const __m256 zero = _mm256_setzero_ps();
  __m256 lo[4] = {inf, inf, inf, inf};
  __m256 hi[4] = {-inf, -inf, -inf, -inf};  // NOLINT
  // fma(p, 0, check) stays 0 for finite p and turns NaN for Inf or NaN.
  __m256 check[4] = {zero, zero, zero, zero};
  std::size_t i = 0;
#if TERSE_QUANTIZER_AVX512
  // Sixteen lanes while 64 values remain, folded into the eight-lane
  // accumulators (min and max do not depend on the order; the zeros'
  // signs are made canonical at the end).
  if (count >= 64) {
    const __m512 inf16 = _mm512_set1_ps(std::numeric_limits<float>::infinity());
    __m512 lo16[2] = {inf16, inf16};
    __m512 hi16[2] = {_mm512_sub_ps(_mm512_setzero_ps(), inf16), _mm512_sub_ps(_mm512_setzero_ps(), inf16)};
    __m512 check16[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (; i + 64 <= count; i += 64) {
      for (int k = 0; k < 4; ++k) {
        const std::size_t at = i + 16 * static_cast<std::size_t>(k);
        __m512 p = _mm512_loadu_ps(src.g + at);
        if constexpr (Residual) {
          p = _mm512_add_ps(p, _mm512_loadu_ps(src.e_old + at));
        }
        lo16[k % 2] = _mm512_maskz_min_ps(0xFFFF, lo16[k % 2], p);
        hi16[k % 2] = _mm512_maskz_max_ps(0xFFFF, hi16[k % 2], p);
        check16[k % 2] = _mm512_fmadd_ps(p, _mm512_setzero_ps(), check16[k % 2]);
      }
    }
    struct halves {  // lanes 0-7 and 8-15 (the cast intrinsics trip g++ 12's maybe-uninitialized)
      __m256 low, high;
    };
    const auto lo_both = std::bit_cast<halves>(_mm512_maskz_min_ps(0xFFFF, lo16[0], lo16[1]));
    const auto hi_both = std::bit_cast<halves>(_mm512_maskz_max_ps(0xFFFF, hi16[0], hi16[1]));
    const auto check_both = std::bit_cast<halves>(_mm512_add_ps(check16[0], check16[1]));
    lo[0] = _mm256_min_ps(lo_both.low, lo_both.high);
    hi[0] = _mm256_max_ps(hi_both.low, hi_both.high);
    check[0] = _mm256_add_ps(check_both.low, check_both.high);
  }
#endif
  for (; i + 32 <= count; i += 32) {
    for (int k = 0; k < 4; ++k) {
      const __m256 p = load_source8<Residual>(src, i + 8 * static_cast<std::size_t>(k));
      lo[k] = _mm256_min_ps(lo[k], p);
      hi[k] = _mm256_max_ps(hi[k], p);
      check[k] = _mm256_fmadd_ps(p, zero, check[k]);
    }
  }
  for (; i + 8 <= count; i += 8) {
    const __m256 p = load_source8<Residual>(src, i);
    lo[0] = _mm256_min_ps(lo[0], p);
    hi[0] = _mm256_max_ps(hi[0], p);
    check[0] = _mm256_fmadd_ps(p, zero, check[0]);
  }
  const __m256 lo8 = _mm256_min_ps(_mm256_min_ps(lo[0], lo[1]), _mm256_min_ps(lo[2], lo[3]));
  const __m256 hi8 = _mm256_max_ps(_mm256_max_ps(hi[0], hi[1]), _mm256_max_ps(hi[2], hi[3]));
  const __m256 check8 = _mm256_add_ps(_mm256_add_ps(check[0], check[1]), _mm256_add_ps(check[2], check[3]));
  __m128 l = _mm_min_ps(_mm256_castps256_ps128(lo8), _mm256_extractf128_ps(lo8, 1));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(hi8), _mm256_extractf128_ps(hi8, 1));
  l = _mm_min_ps(l, _mm_movehl_ps(l, l));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  float lo_all = _mm_cvtss_f32(_mm_min_ss(l, _mm_shuffle_ps(l, l, 1)));
  float hi_all = _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps(h, h, 1)));
  bool bad = _mm256_movemask_ps(_mm256_cmp_ps(check8, zero, _CMP_NEQ_UQ)) != 0;
  for (; i < count; ++i) {
    const float p = source_value<Residual>(src, i);
    lo_all = p < lo_all ? p : lo_all;
    hi_all = p > hi_all ? p : hi_all;
    bad |= (p - p) != 0.0f;
  }
  return {canonical_zero(lo_all), canonical_zero(hi_all), !bad};
}
#endif

template <bool Residual>
value_range min_max(quantizer_source src, std::size_t count) noexcept
{
#if TERSE_QUANTIZER_AVX2
  return min_max_avx2<Residual>(src, count);
#else
  return min_max_portable<Residual>(src, count);
#endif
}

/// Bytes of a uniform body (without the header) for n values.
constexpr std::uint64_t uniform_body_bytes(std::uint64_t n, std::uint64_t bucket, unsigned bits) noexcept
{
  return 8 * bucket_count(n, bucket) + packed_bytes(n, bits);
}

/// Encodes n values from `src` into a uniform body at `body`. Throws
/// errc::non_finite on NaN or Inf (after writing part of the body).
template <unsigned Bits, bool Residual>
void uniform_encode_body(std::uint64_t bucket, const codec_context& ctx, quantizer_source src, std::size_t n,
                         std::byte* body)
{
  const std::uint64_t buckets = bucket_count(n, bucket);
  auto* fields = reinterpret_cast<std::uint8_t*>(body + 8 * buckets);
  const quantizer_draws draws(ctx.private_stream());
  for (std::uint64_t k = 0; k < buckets; ++k) {
    const auto first = static_cast<std::size_t>(k * bucket);
    const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(bucket), n - first);
    const value_range range = min_max<Residual>(src.shifted(first), count);
    TERSE_CHECK(range.finite, errc::non_finite,
                "uniform: bucket " + std::to_string(k) + " holds NaN or Inf (the input must be finite)");
    wire::store(body + 8 * k, range.lo);
    wire::store(body + 8 * k + 4, range.hi);
    const uniform_host_rule<Bits> rule(uniform_rule::make(range.lo, range.hi, (1u << Bits) - 1));
    // the bucket after next: its lines arrive while the next one is coded
    const std::size_t later = std::min<std::size_t>(n, first + 2 * static_cast<std::size_t>(bucket));
    const quantizer_source next = src.shifted(later);
    const prefetch_span ahead{next.g, next.e_old, std::min<std::size_t>(bucket, n - later)};
    quantize<uniform_host_rule<Bits>, Residual>(rule, draws, src.shifted(first), count, ctx.offset + first,
                                                {fields, static_cast<std::uint64_t>(first) * Bits}, ahead);
  }
  clear_padding(fields, n, Bits);
}

/// Checks a uniform body of exactly uniform_body_bytes(n) bytes: every
/// (min, max) finite with min <= max, padding bits zero. Throws
/// errc::malformed_payload naming `codec`.
inline void uniform_check_body(const std::byte* body, std::size_t n, std::uint64_t bucket, unsigned bits,
                               std::string_view codec)
{
  const std::uint64_t buckets = bucket_count(n, bucket);
  for (std::uint64_t k = 0; k < buckets; ++k) {
    const auto lo = wire::load<float>(body + 8 * k);
    const auto hi = wire::load<float>(body + 8 * k + 4);
    TERSE_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, errc::malformed_payload,
                std::string(codec) + " payload: bucket " + std::to_string(k) + " has range [" + std::to_string(lo) +
                    ", " + std::to_string(hi) + "]; a range must be finite with min <= max");
  }
  const std::uint64_t used = static_cast<std::uint64_t>(n) * bits;
  if (used % 8 != 0) {
    const auto last = static_cast<std::uint8_t>(body[8 * buckets + used / 8]);
    TERSE_CHECK((last >> (used % 8)) == 0, errc::malformed_payload,
                std::string(codec) + " payload: padding bits after the last field are not zero");
  }
}

/// Adds the decoded body (already checked) into acc (n values).
template <unsigned Bits>
void uniform_decode_body(const std::byte* body, std::uint64_t bucket, float* acc, std::size_t n) noexcept
{
  const std::uint64_t buckets = bucket_count(n, bucket);
  const auto* fields = reinterpret_cast<const std::uint8_t*>(body + 8 * buckets);
  for (std::uint64_t k = 0; k < buckets; ++k) {
    const auto first = static_cast<std::size_t>(k * bucket);
    const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(bucket), n - first);
    const uniform_host_rule<Bits> rule(
        uniform_rule::make(wire::load<float>(body + 8 * k), wire::load<float>(body + 8 * k + 4), (1u << Bits) - 1));
    dequantize_add(rule, fields, static_cast<std::uint64_t>(first) * Bits, count, acc + first);
  }
}

}  // namespace terse::detail

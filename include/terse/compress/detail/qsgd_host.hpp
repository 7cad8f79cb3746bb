#pragma once
/// @file
/// Host loops of `compress::qsgd<Levels>`: the canonical bucket norm, the
/// rule on eight lanes, and the body encoder, validator and decoder.
///
/// Body (after the 24-byte header), for n values in buckets of B:
///     norms   ceil(n/B) little-endian floats
///     fields  n fields of 1 + log2(s + 1) bits, packed little-endian
///             (quantizer_bits.hpp), the last byte zero-padded

#include <terse/compress/detail/qsgd_math.hpp>
#include <terse/compress/detail/quantizer_engine.hpp>
#include <terse/compress/detail/quantizer_simd.hpp>
#include <terse/compress/detail/uniform_host.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/policy_types.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace terse::detail {

/// qsgd_rule with the lane-parallel versions the engine wants.
/// @tparam Prescaled false when the rule's pre is 1: the lanes then skip
///         multiplying |v| by it (exact either way, so the bits agree).
template <unsigned Bits, bool Prescaled = true>
struct qsgd_host_rule {
  static constexpr unsigned bits = Bits;
  qsgd_rule rule;

  std::uint32_t code(float v, float u) const noexcept { return rule.code(v, u); }
  float value(std::uint32_t field) const noexcept { return rule.value(field); }

#if TERSE_QUANTIZER_AVX2
  __m256 pre8, scale8, unit8, norm8;
  __m256i levels8;

  explicit qsgd_host_rule(const qsgd_rule& r) noexcept
      : rule(r),
        pre8(_mm256_set1_ps(r.pre)),
        scale8(_mm256_set1_ps(r.scale)),
        unit8(_mm256_set1_ps(r.unit)),
        norm8(_mm256_set1_ps(r.norm)),
        levels8(_mm256_set1_epi32(static_cast<int>(r.levels)))
  {
  }

  template <bool Residual>
  TERSE_FORCEINLINE __m256i code8(__m256 v, __m256 u) const noexcept
  {
    const __m256i bits_of_v = _mm256_castps_si256(v);
    __m256 magnitude = _mm256_castsi256_ps(_mm256_and_si256(bits_of_v, _mm256_set1_epi32(0x7fffffff)));
    if constexpr (Prescaled) {
      magnitude = _mm256_mul_ps(magnitude, pre8);
    }
    const __m256i level = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_fmadd_ps(magnitude, scale8, u)), levels8);
    return _mm256_or_si256(_mm256_slli_epi32(level, 1), _mm256_srli_epi32(bits_of_v, 31));
  }

  TERSE_FORCEINLINE __m256 value8(__m256i field) const noexcept
  {
    const __m256 magnitude = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(field, 1)), unit8);
    return _mm256_or_ps(_mm256_min_ps(magnitude, norm8), _mm256_castsi256_ps(_mm256_slli_epi32(field, 31)));
  }
#else
  explicit qsgd_host_rule(const qsgd_rule& r) noexcept : rule(r)
  {
  }
#endif
};

/// A bucket's stored norm, and whether every value was finite.
struct norm_result {
  float norm = 0;
  bool finite = true;
};

/// The canonical norm from 32 partial sums (the pairwise tree).
inline float reduce_norm_lanes(float lanes[norm_lanes], int k) noexcept
{
  for (int width = norm_lanes / 2; width >= 1; width /= 2) {
    for (int l = 0; l < width; ++l) {
      lanes[l] = lanes[l] + lanes[l + width];
    }
  }
  return norm_from_sum(lanes[0], k);
}

template <bool Residual>
norm_result bucket_norm_portable(quantizer_source src, std::size_t count) noexcept
{
  std::uint32_t max_bits = 0;  // |v| as bits: NaN > Inf > every finite value
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint32_t b = float_bits(source_value<Residual>(src, i)) & 0x7fffffffu;
    max_bits = b > max_bits ? b : max_bits;
  }
  if (max_bits >= 0x7f800000u) {
    return {0, false};
  }
  if (max_bits == 0) {
    return {0, true};
  }
  const int k = norm_exponent(max_bits);
  const float factor = pow2f(k);
  float lanes[norm_lanes] = {};
  for (std::size_t i = 0; i < count; ++i) {
    const float x = source_value<Residual>(src, i) * factor;
    lanes[i % norm_lanes] = fma_rn(x, x, lanes[i % norm_lanes]);
  }
  return {reduce_norm_lanes(lanes, k), true};
}

#if TERSE_QUANTIZER_AVX2
template <bool Residual>
norm_result bucket_norm_avx2(quantizer_source src, std::size_t count) noexcept
{
  // One pass: max|p| and the unscaled canonical sum (accumulator q, lane l
  // is partial sum 8q + l: elements i with i % 32 == 8q + l). A second,
  // scaled pass only when max|p| falls outside [2^-40, 2^40).
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  __m256i max4[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  __m256 sum[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  std::size_t i = 0;
  for (; i + 32 <= count; i += 32) {
    for (int q = 0; q < 4; ++q) {
      const __m256 p = load_source8<Residual>(src, i + 8 * static_cast<std::size_t>(q));
      max4[q] = _mm256_max_epu32(max4[q], _mm256_and_si256(_mm256_castps_si256(p), abs_mask));
      sum[q] = _mm256_fmadd_ps(p, p, sum[q]);
    }
  }
  const std::size_t whole = i;
  alignas(32) std::uint32_t lanes_max[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes_max),
                     _mm256_max_epu32(_mm256_max_epu32(max4[0], max4[1]), _mm256_max_epu32(max4[2], max4[3])));
  std::uint32_t max_bits = 0;
  for (std::uint32_t b : lanes_max) {
    max_bits = b > max_bits ? b : max_bits;
  }
  for (std::size_t t = whole; t < count; ++t) {
    const std::uint32_t b = float_bits(source_value<Residual>(src, t)) & 0x7fffffffu;
    max_bits = b > max_bits ? b : max_bits;
  }
  if (max_bits >= 0x7f800000u) {
    return {0, false};
  }
  if (max_bits == 0) {
    return {0, true};
  }
  const int k = norm_exponent(max_bits);
  if (k != 0) {  // rescale: the second pass
    const __m256 factor = _mm256_set1_ps(pow2f(k));
    for (int q = 0; q < 4; ++q) {
      sum[q] = _mm256_setzero_ps();
    }
    for (i = 0; i < whole; i += 32) {
      for (int q = 0; q < 4; ++q) {
        const __m256 x = _mm256_mul_ps(load_source8<Residual>(src, i + 8 * static_cast<std::size_t>(q)), factor);
        sum[q] = _mm256_fmadd_ps(x, x, sum[q]);
      }
    }
  }
  alignas(32) float lanes[norm_lanes];
  for (int q = 0; q < 4; ++q) {
    _mm256_store_ps(lanes + 8 * q, sum[q]);
  }
  const float f = pow2f(k);
  for (std::size_t t = whole; t < count; ++t) {  // the tail continues each lane's sequence
    const float x = source_value<Residual>(src, t) * f;
    lanes[t % norm_lanes] = fma_rn(x, x, lanes[t % norm_lanes]);
  }
  return {reduce_norm_lanes(lanes, k), true};
}
#endif

template <bool Residual>
norm_result bucket_norm(quantizer_source src, std::size_t count) noexcept
{
#if TERSE_QUANTIZER_AVX2
  return bucket_norm_avx2<Residual>(src, count);
#else
  return bucket_norm_portable<Residual>(src, count);
#endif
}

/// Bytes of a qsgd body (without the header) for n values.
constexpr std::uint64_t qsgd_body_bytes(std::uint64_t n, std::uint64_t bucket, unsigned bits) noexcept
{
  return 4 * bucket_count(n, bucket) + packed_bytes(n, bits);
}

/// Encodes n values from `src` into a qsgd body at `body`. Throws
/// errc::non_finite on NaN or Inf (after writing part of the body).
template <std::uint32_t Levels, bool Residual>
void qsgd_encode_body(std::uint64_t bucket, const codec_context& ctx, quantizer_source src, std::size_t n,
                      std::byte* body)
{
  constexpr unsigned bits = qsgd_field_bits(Levels);
  const std::uint64_t buckets = bucket_count(n, bucket);
  auto* fields = reinterpret_cast<std::uint8_t*>(body + 4 * buckets);
  const quantizer_draws draws(ctx.private_stream());
  for (std::uint64_t k = 0; k < buckets; ++k) {
    const auto first = static_cast<std::size_t>(k * bucket);
    const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(bucket), n - first);
    const norm_result norm = bucket_norm<Residual>(src.shifted(first), count);
    TERSE_CHECK(norm.finite, errc::non_finite,
                "qsgd: bucket " + std::to_string(k) + " holds NaN or Inf (the input must be finite)");
    wire::store(body + 4 * k, norm.norm);
    const qsgd_rule rule = qsgd_rule::make(norm.norm, Levels);
    const field_cursor out{fields, static_cast<std::uint64_t>(first) * bits};
    if (rule.pre == 1.0f) {
      quantize<qsgd_host_rule<bits, false>, Residual>(qsgd_host_rule<bits, false>(rule), draws, src.shifted(first),
                                                      count, ctx.offset + first, out);
    } else {
      quantize<qsgd_host_rule<bits, true>, Residual>(qsgd_host_rule<bits, true>(rule), draws, src.shifted(first), count,
                                                     ctx.offset + first, out);
    }
  }
  clear_padding(fields, n, bits);
}

/// Checks a qsgd body of exactly qsgd_body_bytes(n) bytes: every norm
/// finite and not negative (no sign bit), padding bits zero.
inline void qsgd_check_body(const std::byte* body, std::size_t n, std::uint64_t bucket, unsigned bits)
{
  const std::uint64_t buckets = bucket_count(n, bucket);
  for (std::uint64_t k = 0; k < buckets; ++k) {
    const auto norm = wire::load<float>(body + 4 * k);
    TERSE_CHECK(std::isfinite(norm) && !std::signbit(norm), errc::malformed_payload,
                "qsgd payload: bucket " + std::to_string(k) + " has norm " + std::to_string(norm) +
                    "; a norm must be finite and not negative");
  }
  const std::uint64_t used = static_cast<std::uint64_t>(n) * bits;
  if (used % 8 != 0) {
    const auto last = static_cast<std::uint8_t>(body[4 * buckets + used / 8]);
    TERSE_CHECK((last >> (used % 8)) == 0, errc::malformed_payload,
                "qsgd payload: padding bits after the last field are not zero");
  }
}

/// Adds the decoded body (already checked) into acc (n values).
template <std::uint32_t Levels>
void qsgd_decode_body(const std::byte* body, std::uint64_t bucket, float* acc, std::size_t n) noexcept
{
  constexpr unsigned bits = qsgd_field_bits(Levels);
  const std::uint64_t buckets = bucket_count(n, bucket);
  const auto* fields = reinterpret_cast<const std::uint8_t*>(body + 4 * buckets);
  for (std::uint64_t k = 0; k < buckets; ++k) {
    const auto first = static_cast<std::size_t>(k * bucket);
    const std::size_t count = std::min<std::size_t>(static_cast<std::size_t>(bucket), n - first);
    const qsgd_host_rule<bits> rule(qsgd_rule::make(wire::load<float>(body + 4 * k), Levels));
    dequantize_add(rule, fields, static_cast<std::uint64_t>(first) * bits, count, acc + first);
  }
}

}  // namespace terse::detail

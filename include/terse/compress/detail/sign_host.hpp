#pragma once
/// @file
/// Host loops of `compress::sign`: an AVX2 path for buckets that are a
/// multiple of 8 values (one movemask per 8 signs, four double accumulators
/// for the 16-lane mean-|v| sum; compiled under -mavx2 or -march=native,
/// off with TERSE_NO_SIMD), and a portable scalar path for everything.
/// Both follow sign_math.hpp, so they write identical bytes (tested).

#include <terse/compress/detail/sign_math.hpp>
#include <terse/compress/detail/signs_common.hpp>
#include <terse/core/error.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#if defined(__AVX2__) && !defined(TERSE_NO_SIMD) && !defined(__CUDA_ARCH__)
#define TERSE_SIGN_AVX2 1
#include <immintrin.h>
#else
#define TERSE_SIGN_AVX2 0
#endif

namespace terse::detail {

/// Where the sign encoder reads from. Plain: p = g. Residual: p = g + e_old,
/// and e_new receives p - decode(p).
struct sign_io {
  const float* g = nullptr;
  const float* e_old = nullptr;  ///< null unless residual
  float* e_new = nullptr;        ///< null unless residual
};

[[noreturn]] inline void sign_throw_non_finite(std::size_t bucket_index)
{
  TERSE_FAIL(errc::non_finite, "sign: input bucket " + std::to_string(bucket_index) + " holds NaN or Inf");
}

/// Stores a bucket's scale, or throws non_finite; returns the scale.
inline float sign_finish_bucket(const double* lane, std::size_t count, std::size_t bucket_index, std::byte* scale_at)
{
  const double total = sign_lane_total(lane);
  if (!sign_total_finite(total)) {
    sign_throw_non_finite(bucket_index);
  }
  const float scale = sign_scale(total, count);
  std::memcpy(scale_at, &scale, sizeof scale);
  return scale;
}

/// Portable encoder for any bucket size. Writes ceil(n/B) scales at
/// `scales` and ceil(n/8) bytes of signs at `bits`.
template <bool Residual>
void sign_encode_scalar(sign_io io, std::size_t n, std::size_t bucket, std::byte* scales, std::byte* bits)
{
  auto* packed = reinterpret_cast<unsigned char*>(bits);
  std::memset(packed, 0, packed_bytes(n, 1));
  for (std::size_t start = 0, b = 0; start < n; start += bucket, ++b) {
    const std::size_t count = n - start < bucket ? n - start : bucket;
    double lane[sign_lanes] = {};
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t at = start + i;
      float p = io.g[at];
      if constexpr (Residual) {
        p = p + io.e_old[at];
        io.e_new[at] = p;
      }
      lane[i % sign_lanes] += static_cast<double>(std::fabs(p));
      if (sign_negative(p)) {
        packed[at / 8] = static_cast<unsigned char>(packed[at / 8] | (1u << (at % 8)));
      }
    }
    const float scale = sign_finish_bucket(lane, count, b, scales + 4 * b);
    if constexpr (Residual) {
      for (std::size_t at = start; at < start + count; ++at) {
        const float p = io.e_new[at];
        io.e_new[at] = p - sign_value(scale, sign_negative(p));
      }
    }
  }
}

/// Portable decoder: acc[i] += +-scale.
inline void sign_decode_scalar(const std::byte* scales, const std::byte* bits, std::size_t n, std::size_t bucket,
                               float* acc)
{
  const auto* packed = reinterpret_cast<const unsigned char*>(bits);
  for (std::size_t start = 0, b = 0; start < n; start += bucket, ++b) {
    const std::size_t end = n - start < bucket ? n : start + bucket;
    float scale;
    std::memcpy(&scale, scales + 4 * b, sizeof scale);
    for (std::size_t at = start; at < end; ++at) {
      acc[at] += sign_value(scale, ((packed[at / 8] >> (at % 8)) & 1u) != 0);
    }
  }
}

#if TERSE_SIGN_AVX2
inline constexpr bool sign_has_avx2 = true;

/// AVX2 encoder; needs bucket % 8 == 0 so every bucket starts on a byte.
template <bool Residual>
void sign_encode_avx2(sign_io io, std::size_t n, std::size_t bucket, std::byte* scales, std::byte* bits)
{
  auto* packed = reinterpret_cast<unsigned char*>(bits);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256 zero = _mm256_setzero_ps();
  for (std::size_t start = 0, b = 0; start < n; start += bucket, ++b) {
    const std::size_t count = n - start < bucket ? n - start : bucket;
    const float* g = io.g + start;
    unsigned char* out = packed + start / 8;
    __m256d acc0 = _mm256_setzero_pd();  // lanes 0-3
    __m256d acc1 = _mm256_setzero_pd();  // lanes 4-7
    __m256d acc2 = _mm256_setzero_pd();  // lanes 8-11
    __m256d acc3 = _mm256_setzero_pd();  // lanes 12-15
    std::size_t i = 0;
    for (; i + 16 <= count; i += 16) {
      __m256 x0 = _mm256_loadu_ps(g + i);
      __m256 x1 = _mm256_loadu_ps(g + i + 8);
      if constexpr (Residual) {
        x0 = _mm256_add_ps(x0, _mm256_loadu_ps(io.e_old + start + i));
        x1 = _mm256_add_ps(x1, _mm256_loadu_ps(io.e_old + start + i + 8));
        _mm256_storeu_ps(io.e_new + start + i, x0);
        _mm256_storeu_ps(io.e_new + start + i + 8, x1);
      }
      out[i / 8] = static_cast<unsigned char>(_mm256_movemask_ps(_mm256_cmp_ps(x0, zero, _CMP_LT_OQ)));
      out[i / 8 + 1] = static_cast<unsigned char>(_mm256_movemask_ps(_mm256_cmp_ps(x1, zero, _CMP_LT_OQ)));
      const __m256 y0 = _mm256_and_ps(x0, abs_mask);
      const __m256 y1 = _mm256_and_ps(x1, abs_mask);
      acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(y0)));
      acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(y0, 1)));
      acc2 = _mm256_add_pd(acc2, _mm256_cvtps_pd(_mm256_castps256_ps128(y1)));
      acc3 = _mm256_add_pd(acc3, _mm256_cvtps_pd(_mm256_extractf128_ps(y1, 1)));
    }
    double lane[sign_lanes];
    _mm256_storeu_pd(lane, acc0);
    _mm256_storeu_pd(lane + 4, acc1);
    _mm256_storeu_pd(lane + 8, acc2);
    _mm256_storeu_pd(lane + 12, acc3);
    // Fewer than 16 left: the same lanes, in the same order, one at a time.
    unsigned tail_bits = 0;
    for (std::size_t j = i; j < count; ++j) {
      float p = g[j];
      if constexpr (Residual) {
        p = p + io.e_old[start + j];
        io.e_new[start + j] = p;
      }
      lane[j % sign_lanes] += static_cast<double>(std::fabs(p));
      tail_bits |= (sign_negative(p) ? 1u : 0u) << (j - i);
    }
    if (i < count) {
      out[i / 8] = static_cast<unsigned char>(tail_bits);
      if (count - i > 8) {
        out[i / 8 + 1] = static_cast<unsigned char>(tail_bits >> 8);
      }
    }
    const float scale = sign_finish_bucket(lane, count, b, scales + 4 * b);
    if constexpr (Residual) {
      float* e = io.e_new + start;
      const __m256 vscale = _mm256_set1_ps(scale);
      std::size_t j = 0;
      for (; j + 8 <= count; j += 8) {
        const __m256 p = _mm256_loadu_ps(e + j);
        const __m256 negative = _mm256_cmp_ps(p, zero, _CMP_LT_OQ);
        const __m256 w = _mm256_xor_ps(vscale, _mm256_and_ps(negative, sign_bit));
        _mm256_storeu_ps(e + j, _mm256_sub_ps(p, w));
      }
      for (; j < count; ++j) {
        e[j] = e[j] - sign_value(scale, sign_negative(e[j]));
      }
    }
  }
}

/// AVX2 decoder; needs bucket % 8 == 0.
inline void sign_decode_avx2(const std::byte* scales, const std::byte* bits, std::size_t n, std::size_t bucket,
                             float* acc)
{
  const auto* packed = reinterpret_cast<const unsigned char*>(bits);
  const __m256i select = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  for (std::size_t start = 0, b = 0; start < n; start += bucket, ++b) {
    const std::size_t count = n - start < bucket ? n - start : bucket;
    float scale;
    std::memcpy(&scale, scales + 4 * b, sizeof scale);
    const __m256 vscale = _mm256_set1_ps(scale);
    float* a = acc + start;
    const unsigned char* in = packed + start / 8;
    std::size_t i = 0;
    for (; i + 8 <= count; i += 8) {
      const __m256i byte = _mm256_set1_epi32(in[i / 8]);
      const __m256i negative = _mm256_cmpeq_epi32(_mm256_and_si256(byte, select), select);
      const __m256 w = _mm256_xor_ps(vscale, _mm256_and_ps(_mm256_castsi256_ps(negative), sign_bit));
      _mm256_storeu_ps(a + i, _mm256_add_ps(_mm256_loadu_ps(a + i), w));
    }
    for (; i < count; ++i) {
      a[i] += sign_value(scale, ((in[i / 8] >> (i % 8)) & 1u) != 0);
    }
  }
}
#else
inline constexpr bool sign_has_avx2 = false;
#endif

/// Encoder body: the fastest path this build has for `bucket`.
template <bool Residual>
void sign_encode_body(sign_io io, std::size_t n, std::size_t bucket, std::byte* scales, std::byte* bits)
{
#if TERSE_SIGN_AVX2
  if (bucket % 8 == 0) {
    sign_encode_avx2<Residual>(io, n, bucket, scales, bits);
    return;
  }
#endif
  sign_encode_scalar<Residual>(io, n, bucket, scales, bits);
}

/// Decoder body (after validation): the fastest path this build has.
inline void sign_decode_body(const std::byte* scales, const std::byte* bits, std::size_t n, std::size_t bucket,
                             float* acc)
{
#if TERSE_SIGN_AVX2
  if (bucket % 8 == 0) {
    sign_decode_avx2(scales, bits, n, bucket, acc);
    return;
  }
#endif
  sign_decode_scalar(scales, bits, n, bucket, acc);
}

}  // namespace terse::detail

#pragma once
/// @file
/// Host loops of `compress::cast<Storage>`: convert (optionally with the
/// residual) under an overflow policy, check 16-bit values, and add them
/// into an accumulator. The
/// F16C (fp16), AVX2 and AVX-512 (bf16) paths produce the same bits as the
/// portable ones; the tests compare them on random bit patterns. Large bf16
/// payloads are written with non-temporal stores (cast_streaming_bytes).
///
/// Outputs and payloads are byte pointers of any alignment.

#include <terse/compress/detail/cast_math.hpp>
#include <terse/core/numeric.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if !defined(TERSE_NO_SIMD) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && !defined(__CUDA_ARCH__)
#define TERSE_CAST_SIMD 1
#include <immintrin.h>
#else
#define TERSE_CAST_SIMD 0
#endif

#if TERSE_CAST_SIMD && defined(__AVX512F__)
#define TERSE_CAST_AVX512 1  // bf16 encode on 16 lanes
#else
#define TERSE_CAST_AVX512 0
#endif

namespace terse::detail {

/// Elements converted per stack chunk in the portable loops.
inline constexpr std::size_t cast_chunk = 512;

/// Converts n values (g, or g + e_old when e_old is set, writing
/// e_new = p - float(cast(p))) into 2n bytes at `out` under `Policy`.
/// Returns false if a value was NaN or Inf, or, under overflow::raise,
/// beyond the storage range (the output is then unspecified).
template <class Storage, compress::overflow Policy = compress::overflow::raise>
bool cast_encode_portable(const float* g, const float* e_old, float* e_new, std::size_t n, std::byte* out) noexcept
{
  using rule = cast_rule<Storage>;
  std::uint16_t bits[cast_chunk];
  bool finite = true;
  for (std::size_t first = 0; first < n; first += cast_chunk) {
    const std::size_t count = std::min(cast_chunk, n - first);
    bool bad = false;
    for (std::size_t i = 0; i < count; ++i) {
      const float p = e_old == nullptr ? g[first + i] : g[first + i] + e_old[first + i];
      if constexpr (Policy == compress::overflow::raise) {
        bad |= rule::overflows(p);  // Inf and NaN included
      } else {
        bad |= (float_bits(p) & 0x7f800000u) == 0x7f800000u;
      }
      bits[i] = cast_encode_one<Storage, Policy>(p);
      if (e_new != nullptr) {
        e_new[first + i] = p - rule::decode(bits[i]);
      }
    }
    finite = finite && !bad;
    std::memcpy(out + 2 * first, bits, 2 * count);
  }
  return finite;
}

/// True if none of the n 16-bit values at `in` is NaN (Inf allowed).
template <class Storage>
bool cast_none_nan(const std::byte* in, std::size_t n) noexcept
{
  constexpr std::uint16_t mask = cast_rule<Storage>::exponent_mask;
  std::uint16_t bits[cast_chunk];
  std::uint32_t bad = 0;
  for (std::size_t first = 0; first < n; first += cast_chunk) {
    const std::size_t count = std::min(cast_chunk, n - first);
    std::memcpy(bits, in + 2 * first, 2 * count);
    for (std::size_t i = 0; i < count; ++i) {
      bad |= static_cast<std::uint32_t>((bits[i] & mask) == mask && (bits[i] & 0x7fffu) != mask);
    }
  }
  return bad == 0;
}

/// True if none of the n 16-bit values at `in` is Inf or NaN.
template <class Storage>
bool cast_all_finite_portable(const std::byte* in, std::size_t n) noexcept
{
  std::uint16_t bits[cast_chunk];
  std::uint32_t bad = 0;
  for (std::size_t first = 0; first < n; first += cast_chunk) {
    const std::size_t count = std::min(cast_chunk, n - first);
    std::memcpy(bits, in + 2 * first, 2 * count);
    for (std::size_t i = 0; i < count; ++i) {
      bad |= static_cast<std::uint32_t>((bits[i] & cast_rule<Storage>::exponent_mask) ==
                                        cast_rule<Storage>::exponent_mask);
    }
  }
  return bad == 0;
}

/// out[i] (+)= float(value i) for the n 16-bit values at `in`.
template <class Storage, bool Add>
void cast_decode_portable(const std::byte* in, std::size_t n, float* out) noexcept
{
  std::uint16_t bits[cast_chunk];
  for (std::size_t first = 0; first < n; first += cast_chunk) {
    const std::size_t count = std::min(cast_chunk, n - first);
    std::memcpy(bits, in + 2 * first, 2 * count);
    for (std::size_t i = 0; i < count; ++i) {
      const float v = cast_rule<Storage>::decode(bits[i]);
      out[first + i] = Add ? out[first + i] + v : v;
    }
  }
}

#if TERSE_CAST_SIMD
/// Eight values to 16-bit storage bits (in the low halves of int32 lanes
/// for bf16, packed for fp16): saturated unless `Policy` lets them round to Inf.
template <class Storage, compress::overflow Policy>
TERSE_FORCEINLINE __m128i cast8(__m256 p) noexcept
{
  constexpr bool saturate = Policy != compress::overflow::infinity;
  if constexpr (std::is_same_v<Storage, fp16>) {
    if constexpr (saturate) {
      const __m256 limit = _mm256_set1_ps(cast_rule<fp16>::max_finite);
      p = _mm256_min_ps(_mm256_max_ps(p, _mm256_set1_ps(-cast_rule<fp16>::max_finite)), limit);
    }
    return _mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  } else {
    const __m256i bits = _mm256_castps_si256(p);
    __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
    if constexpr (saturate) {
      magnitude = _mm256_min_epu32(magnitude, _mm256_set1_epi32(static_cast<int>(cast_rule<bf16>::max_finite_bits)));
    }
    const __m256i round = _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
                                           _mm256_and_si256(_mm256_srli_epi32(magnitude, 16), _mm256_set1_epi32(1)));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(magnitude, round), 16);
    const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x8000));
    const __m256i halves = _mm256_or_si256(rounded, sign);
    return _mm_packus_epi32(_mm256_castsi256_si128(halves), _mm256_extracti128_si256(halves, 1));
  }
}

/// Eight 16-bit storage values to floats.
template <class Storage>
TERSE_FORCEINLINE __m256 widen8(__m128i h) noexcept
{
  if constexpr (std::is_same_v<Storage, fp16>) {
    return _mm256_cvtph_ps(h);
  } else {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <class Storage, compress::overflow Policy = compress::overflow::raise>
bool cast_encode_simd(const float* g, const float* e_old, float* e_new, std::size_t n, std::byte* out) noexcept
{
  // fma(p, 0, check) stays 0 for finite p and becomes NaN for Inf or NaN;
  // under overflow::raise the largest magnitude seen is kept too.
  __m256 check0 = _mm256_setzero_ps();
  __m256 check1 = _mm256_setzero_ps();
  __m256 largest = _mm256_setzero_ps();
  const __m256 zero = _mm256_setzero_ps();
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 p0 = _mm256_loadu_ps(g + i);
    __m256 p1 = _mm256_loadu_ps(g + i + 8);
    if (e_old != nullptr) {
      p0 = _mm256_add_ps(p0, _mm256_loadu_ps(e_old + i));
      p1 = _mm256_add_ps(p1, _mm256_loadu_ps(e_old + i + 8));
    }
    check0 = _mm256_fmadd_ps(p0, zero, check0);
    check1 = _mm256_fmadd_ps(p1, zero, check1);
    if constexpr (Policy == compress::overflow::raise) {
      largest = _mm256_max_ps(largest, _mm256_max_ps(_mm256_and_ps(p0, magnitude), _mm256_and_ps(p1, magnitude)));
    }
    const __m128i h0 = cast8<Storage, Policy>(p0);
    const __m128i h1 = cast8<Storage, Policy>(p1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), h0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i + 16), h1);
    if (e_new != nullptr) {
      _mm256_storeu_ps(e_new + i, _mm256_sub_ps(p0, widen8<Storage>(h0)));
      _mm256_storeu_ps(e_new + i + 8, _mm256_sub_ps(p1, widen8<Storage>(h1)));
    }
  }
  alignas(32) float lanes[8];
  alignas(32) float peaks[8];
  _mm256_store_ps(lanes, _mm256_add_ps(check0, check1));
  _mm256_store_ps(peaks, largest);
  bool finite = cast_encode_portable<Storage, Policy>(g + i, e_old == nullptr ? nullptr : e_old + i,
                                                      e_new == nullptr ? nullptr : e_new + i, n - i, out + 2 * i);
  for (int k = 0; k < 8; ++k) {
    finite =
        finite && lanes[k] == 0.0f && !(Policy == compress::overflow::raise && cast_rule<Storage>::overflows(peaks[k]));
  }
  return finite;
}

template <class Storage>
bool cast_all_finite_simd(const std::byte* in, std::size_t n) noexcept
{
  const __m256i mask = _mm256_set1_epi16(static_cast<short>(cast_rule<Storage>::exponent_mask));
  __m256i bad = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 2 * i));
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi16(_mm256_and_si256(h, mask), mask));
  }
  return _mm256_testz_si256(bad, bad) != 0 && cast_all_finite_portable<Storage>(in + 2 * i, n - i);
}

template <class Storage, bool Add>
void cast_decode_simd(const std::byte* in, std::size_t n, float* out) noexcept
{
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = widen8<Storage>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i)));
    if constexpr (Add) {
      v = _mm256_add_ps(_mm256_loadu_ps(out + i), v);
    }
    _mm256_storeu_ps(out + i, v);
  }
  cast_decode_portable<Storage, Add>(in + 2 * i, n - i, out + i);
}
#endif

#if TERSE_CAST_AVX512
/// Payloads from this size on are written with streaming (non-temporal)
/// stores. Beyond a core's private caches the input, twice the payload's
/// size, evicts the payload as it is written anyway, and it leaves for the
/// network rather than being read back here: streaming skips the read for
/// ownership of every destination line, a third of the memory traffic.
inline constexpr std::size_t cast_streaming_bytes = std::size_t{4} << 20;

// The zero-masked forms with a full mask: the plain ones start from
// _mm512_undefined_epi32(), which g++ 12 reports as maybe-uninitialized.
inline constexpr __mmask16 cast_all16 = 0xFFFF;

/// How far ahead (in floats) the input is prefetched: the hardware
/// prefetcher alone leaves a single core's loads short of the memory's
/// bandwidth (measured: 1 to 2 KiB ahead is best, 4 KiB slower).
inline constexpr std::size_t cast_prefetch_floats = 256;

/// Prefetches the two cache lines from `at`.
TERSE_FORCEINLINE void prefetch_lines128(const float* at) noexcept
{
  _mm_prefetch(reinterpret_cast<const char*>(at), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(at + 16), _MM_HINT_T0);
}

/// Sixteen values to bfloat16 bits in int32 lanes (round to nearest even,
/// saturated unless `Policy` lets them round to Inf); `peak` keeps the
/// largest magnitude bits seen, which decide finiteness and overflow.
template <compress::overflow Policy>
TERSE_FORCEINLINE __m512i bf16_cast16(__m512i bits, __m512i& peak) noexcept
{
  __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
  peak = _mm512_maskz_max_epu32(cast_all16, peak, magnitude);
  if constexpr (Policy != compress::overflow::infinity) {
    magnitude = _mm512_maskz_min_epu32(cast_all16, magnitude,
                                       _mm512_set1_epi32(static_cast<int>(cast_rule<bf16>::max_finite_bits)));
  }
  const __m512i odd = _mm512_and_si512(_mm512_maskz_srli_epi32(cast_all16, magnitude, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_maskz_srli_epi32(
      cast_all16, _mm512_add_epi32(_mm512_add_epi32(magnitude, _mm512_set1_epi32(0x7fff)), odd), 16);
  // rounded | (bits >> 16 & 0x8000)
  return _mm512_ternarylogic_epi32(rounded, _mm512_maskz_srli_epi32(cast_all16, bits, 16), _mm512_set1_epi32(0x8000),
                                   0xF8);
}

/// Sixteen values of `g` (+ `e_old`) from `at`, cast; writes e_new.
template <compress::overflow Policy>
TERSE_FORCEINLINE __m256i bf16_encode16(const float* g, const float* e_old, float* e_new, std::size_t at,
                                        __m512i& peak) noexcept
{
  __m512 p = _mm512_loadu_ps(g + at);
  if (e_old != nullptr) {
    p = _mm512_add_ps(p, _mm512_loadu_ps(e_old + at));
  }
  const __m512i halves = bf16_cast16<Policy>(_mm512_castps_si512(p), peak);
  if (e_new != nullptr) {
    _mm512_storeu_ps(e_new + at,
                     _mm512_sub_ps(p, _mm512_castsi512_ps(_mm512_maskz_slli_epi32(cast_all16, halves, 16))));
  }
  return _mm512_maskz_cvtepi32_epi16(cast_all16, halves);
}

/// cast_encode_simd for bf16 on AVX-512. With `streaming`, the payload is
/// written by 64-byte non-temporal stores from its first 64-byte boundary
/// on (an odd address has none: then plain stores).
template <compress::overflow Policy>
bool cast_encode_bf16_avx512(const float* g, const float* e_old, float* e_new, std::size_t n, std::byte* out,
                             bool streaming) noexcept
{
  const auto address = reinterpret_cast<std::uintptr_t>(out);
  std::size_t i = 0;
  if (streaming && address % 2 == 0) {
    i = std::min(n, (64 - address % 64) % 64 / 2);
  } else {
    streaming = false;
  }
  const auto shifted = [&](auto* p, std::size_t by) { return p == nullptr ? nullptr : p + by; };
  bool finite = cast_encode_portable<bf16, Policy>(g, e_old, e_new, i, out);
  __m512i peak = _mm512_setzero_si512();
  for (; i + 32 <= n; i += 32) {
    if (i + cast_prefetch_floats + 32 <= n) {
      prefetch_lines128(g + i + cast_prefetch_floats);
      if (e_old != nullptr) {
        prefetch_lines128(e_old + i + cast_prefetch_floats);
      }
    }
    const __m256i h0 = bf16_encode16<Policy>(g, e_old, e_new, i, peak);
    const __m256i h1 = bf16_encode16<Policy>(g, e_old, e_new, i + 16, peak);
    auto* at = reinterpret_cast<__m256i*>(out + 2 * i);
    if (streaming) {  // two halves of one line, which the line fill buffer joins
      _mm256_stream_si256(at, h0);
      _mm256_stream_si256(at + 1, h1);
    } else {
      _mm256_storeu_si256(at, h0);
      _mm256_storeu_si256(at + 1, h1);
    }
  }
  if (streaming) {
    _mm_sfence();  // order the streamed lines before anything written after
  }
  finite =
      cast_encode_portable<bf16, Policy>(g + i, shifted(e_old, i), shifted(e_new, i), n - i, out + 2 * i) && finite;
  // Under overflow::raise a value is refused from the first magnitude that
  // rounds to Inf, otherwise only Inf and NaN (float order is bit order).
  const std::uint32_t limit = Policy == compress::overflow::raise ? cast_rule<bf16>::overflow_from_bits : 0x7f800000u;
  alignas(64) std::uint32_t peaks[16];
  _mm512_store_si512(peaks, peak);
  return finite && *std::max_element(peaks, peaks + 16) < limit;
}
#endif

template <class Storage, compress::overflow Policy = compress::overflow::raise>
bool cast_encode(const float* g, const float* e_old, float* e_new, std::size_t n, std::byte* out) noexcept
{
#if TERSE_CAST_AVX512
  if constexpr (std::is_same_v<Storage, bf16>) {
    return cast_encode_bf16_avx512<Policy>(g, e_old, e_new, n, out, 2 * n >= cast_streaming_bytes);
  }
#endif
#if TERSE_CAST_SIMD
  return cast_encode_simd<Storage, Policy>(g, e_old, e_new, n, out);
#else
  return cast_encode_portable<Storage, Policy>(g, e_old, e_new, n, out);
#endif
}

/// cast_encode under the run-time `policy`.
template <class Storage>
bool cast_encode(compress::overflow policy, const float* g, const float* e_old, float* e_new, std::size_t n,
                 std::byte* out) noexcept
{
  switch (policy) {
    case compress::overflow::infinity:
      return cast_encode<Storage, compress::overflow::infinity>(g, e_old, e_new, n, out);
    case compress::overflow::saturate:
      return cast_encode<Storage, compress::overflow::saturate>(g, e_old, e_new, n, out);
    case compress::overflow::raise: break;
  }
  return cast_encode<Storage, compress::overflow::raise>(g, e_old, e_new, n, out);
}

template <class Storage>
bool cast_all_finite(const std::byte* in, std::size_t n) noexcept
{
#if TERSE_CAST_SIMD
  return cast_all_finite_simd<Storage>(in, n);
#else
  return cast_all_finite_portable<Storage>(in, n);
#endif
}

template <class Storage, bool Add>
void cast_decode(const std::byte* in, std::size_t n, float* out) noexcept
{
#if TERSE_CAST_SIMD
  cast_decode_simd<Storage, Add>(in, n, out);
#else
  cast_decode_portable<Storage, Add>(in, n, out);
#endif
}

}  // namespace terse::detail

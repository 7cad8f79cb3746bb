#pragma once
/// @file
/// The host loops the quantizers share: quantize a bucket's values with
/// their dithers into packed fields (optionally writing the residual), and
/// add decoded fields into an accumulator. Each has an AVX2 path and a
/// portable path that write the same bits.
///
/// A host rule `R` (see uniform_host.hpp, qsgd_host.hpp) provides
///     static constexpr unsigned bits;                  field width, 2..8
///     std::uint32_t code(float v, float u) const;      field of v for dither u
///     float value(std::uint32_t field) const;          what the field decodes to
/// and, with AVX2, the same on eight lanes:
///     __m256i code8(__m256 v, __m256 u) const;         fields in int32 lanes
///     __m256 value8(__m256i fields) const;

#include <terse/compress/detail/quantizer_bits.hpp>
#include <terse/compress/detail/quantizer_draws.hpp>
#include <terse/compress/detail/quantizer_simd.hpp>
#include <terse/core/philox.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace terse::detail {

/// Where a quantizer's values come from: the input itself, or p = g + e_old
/// with e_new = p - decode(p) written beside the codes (encode_residual).
struct quantizer_source {
  const float* g = nullptr;
  const float* e_old = nullptr;  ///< null: plain encode
  float* e_new = nullptr;

  quantizer_source shifted(std::size_t by) const noexcept
  {
    return {g + by, e_old == nullptr ? nullptr : e_old + by, e_new == nullptr ? nullptr : e_new + by};
  }
};

/// Value i of a source: g[i], or g[i] + e_old[i].
template <bool Residual>
TERSE_FORCEINLINE float source_value(const quantizer_source& src, std::size_t i) noexcept
{
  if constexpr (Residual) {
    return src.g[i] + src.e_old[i];
  } else {
    return src.g[i];
  }
}

/// Where codes go: field i of a span sits at bit `bit0 + i * bits` of `base`.
struct field_cursor {
  std::uint8_t* base = nullptr;
  std::uint64_t bit0 = 0;
};

/// Values to ask the memory for while a bucket is quantized (a later
/// bucket's), a few lines per group of 64: quantizing is compute-bound, and
/// without this the min/max pass of each bucket waits for memory while the
/// memory idles during quantizing. Empty by default.
struct prefetch_span {
  const float* g = nullptr;
  const float* e_old = nullptr;  ///< null: none
  std::size_t count = 0;

  /// Prefetches the lines of values [at, at + 64) that lie in the span.
  TERSE_FORCEINLINE void group(std::size_t at) const noexcept
  {
#if TERSE_QUANTIZER_AVX2
    for (std::size_t k = at; k < at + 64 && k < count; k += 16) {
      _mm_prefetch(reinterpret_cast<const char*>(g + k), _MM_HINT_T1);
      if (e_old != nullptr) {
        _mm_prefetch(reinterpret_cast<const char*>(e_old + k), _MM_HINT_T1);
      }
    }
#else
    (void)at;
#endif
  }
};

// --- quantize: portable ----------------------------------------------------------

/// Quantizes `count` values whose first draw index is `j0`, element by
/// element, for the ragged pieces and the portable build.
template <class R, bool Residual>
void quantize_portable(const R& rule, const random_stream& stream, quantizer_source src, std::size_t count,
                       std::uint64_t j0, field_cursor out) noexcept
{
  std::uint16_t draws[64];
  std::uint8_t fields[64];
  std::size_t i = 0;
  while (i < count) {
    const std::uint64_t j = j0 + i;
    const auto in_group = static_cast<std::size_t>(j % draws_per_group);
    const std::size_t take = std::min<std::size_t>(draws_per_group - in_group, count - i);
    draw_group16(stream, j / draws_per_group, draws);
    const std::uint64_t bit = out.bit0 + static_cast<std::uint64_t>(i) * R::bits;
    const bool whole = take == 64 && bit % 8 == 0;
    for (std::size_t k = 0; k < take; ++k) {
      const float p = source_value<Residual>(src, i + k);
      const std::uint32_t field = rule.code(p, dither(draws[in_group + k]));
      if constexpr (Residual) {
        src.e_new[i + k] = p - rule.value(field);
      }
      if (whole) {
        fields[k] = static_cast<std::uint8_t>(field);
      } else {
        put_field(out.base, bit + static_cast<std::uint64_t>(k) * R::bits, R::bits, field);
      }
    }
    if (whole) {
      pack64(fields, R::bits, out.base + bit / 8);
    }
    i += take;
  }
}

/// Adds the decoded values of `count` fields into acc, element by element.
template <class R>
void dequantize_add_portable(const R& rule, const std::uint8_t* base, std::uint64_t bit0, std::size_t count,
                             float* acc) noexcept
{
  std::size_t i = 0;
  // Fields one by one up to a byte boundary, then eight at a time.
  for (; i < count && (bit0 + static_cast<std::uint64_t>(i) * R::bits) % 8 != 0; ++i) {
    acc[i] += rule.value(get_field(base, bit0 + static_cast<std::uint64_t>(i) * R::bits, R::bits));
  }
  constexpr std::uint64_t mask = (std::uint64_t{1} << R::bits) - 1;
  for (; i + 8 <= count; i += 8) {
    const std::uint64_t word = load_octet(base + (bit0 + static_cast<std::uint64_t>(i) * R::bits) / 8, R::bits);
    for (unsigned k = 0; k < 8; ++k) {
      acc[i + k] += rule.value(static_cast<std::uint32_t>((word >> (k * R::bits)) & mask));
    }
  }
  for (; i < count; ++i) {
    acc[i] += rule.value(get_field(base, bit0 + static_cast<std::uint64_t>(i) * R::bits, R::bits));
  }
}

// --- quantize: AVX2 --------------------------------------------------------------

#if TERSE_QUANTIZER_AVX2

/// Packs 64 fields (eight int32 vectors, each field below 2^bits; for
/// 8 bits values up to 255 pass and larger ones saturate to 255) into
/// 8 * bits bytes at `out`.
template <unsigned Bits>
TERSE_FORCEINLINE void store_fields64(const __m256i f[8], std::uint8_t* out) noexcept
{
  // int32 -> bytes in element order (values are below 256: no saturation).
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i b0 = _mm256_permutevar8x32_epi32(
      _mm256_packus_epi16(_mm256_packus_epi32(f[0], f[1]), _mm256_packus_epi32(f[2], f[3])), order);
  const __m256i b1 = _mm256_permutevar8x32_epi32(
      _mm256_packus_epi16(_mm256_packus_epi32(f[4], f[5]), _mm256_packus_epi32(f[6], f[7])), order);
  if constexpr (Bits == 8) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), b0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32), b1);
  } else if constexpr (Bits == 4) {
    // byte pairs -> b0 + 16 b1 in 16-bit lanes, then back to bytes.
    const __m256i nibbles = _mm256_set1_epi16(0x1001);
    const __m256i w = _mm256_packus_epi16(_mm256_maddubs_epi16(b0, nibbles), _mm256_maddubs_epi16(b1, nibbles));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute4x64_epi64(w, 0xD8));
  } else if constexpr (Bits == 2) {
    // byte quads -> b0 + 4 b1 + 16 b2 + 64 b3 in 32-bit lanes, then bytes.
    const __m256i pairs = _mm256_set1_epi16(0x0401);
    const __m256i quads = _mm256_set1_epi32(0x00100001);
    const __m256i d0 = _mm256_madd_epi16(_mm256_maddubs_epi16(b0, pairs), quads);
    const __m256i d1 = _mm256_madd_epi16(_mm256_maddubs_epi16(b1, pairs), quads);
    const __m256i p = _mm256_packus_epi16(_mm256_packus_epi32(d0, d1), _mm256_setzero_si256());
    const __m256i ordered = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(ordered));
  } else {
    alignas(32) std::uint8_t bytes[64];
    _mm256_store_si256(reinterpret_cast<__m256i*>(bytes), b0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(bytes + 32), b1);
    pack64(bytes, Bits, out);
  }
}

/// The eight fields of `bits` bits at byte-aligned `at`, in int32 lanes.
template <unsigned Bits>
TERSE_FORCEINLINE __m256i load_fields8(const std::uint8_t* at) noexcept
{
  if constexpr (Bits == 8) {
    std::uint64_t word;
    std::memcpy(&word, at, 8);
    return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(word)));
  } else if constexpr (Bits == 4 || Bits == 2) {
    std::uint32_t word = 0;
    std::memcpy(&word, at, Bits);
    const __m256i shifts =
        Bits == 4 ? _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28) : _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shifts),
                            _mm256_set1_epi32((1 << Bits) - 1));
  } else {
    const __m256i word = _mm256_set1_epi64x(static_cast<long long>(load_octet(at, Bits)));
    constexpr long long b = Bits;
    const __m256i low = _mm256_srlv_epi64(word, _mm256_setr_epi64x(0, b, 2 * b, 3 * b));
    const __m256i high = _mm256_srlv_epi64(word, _mm256_setr_epi64x(4 * b, 5 * b, 6 * b, 7 * b));
    const __m256i evens = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    const __m256i both =
        _mm256_blend_epi32(_mm256_permutevar8x32_epi32(low, evens), _mm256_permutevar8x32_epi32(high, evens), 0xF0);
    return _mm256_and_si256(both, _mm256_set1_epi32((1 << Bits) - 1));
  }
}

/// Quantizes one whole, byte-aligned group of 64 values at `src` with the
/// draws in `words` (word w of the group's eight blocks).
template <class R, bool Residual>
TERSE_FORCEINLINE void quantize_group_avx2(const R& rule, const __m256i words[4], quantizer_source src,
                                           std::uint8_t* out) noexcept
{
  __m256i fields[8];
  for (int w = 0; w < 4; ++w) {
    for (int half = 0; half < 2; ++half) {
      const int at = w * 16 + half * 8;
      __m256 p = _mm256_loadu_ps(src.g + at);
      if constexpr (Residual) {
        p = _mm256_add_ps(p, _mm256_loadu_ps(src.e_old + at));
      }
      const __m256i field = rule.template code8<Residual>(p, dither8(words[w], half));
      fields[w * 2 + half] = field;
      if constexpr (Residual) {
        _mm256_storeu_ps(src.e_new + at, _mm256_sub_ps(p, rule.value8(field)));
      }
    }
  }
  store_fields64<R::bits>(fields, out);
}

#if TERSE_QUANTIZER_AVX512
/// Rules of 8-bit fields with sixteen-lane forms (code16, value16; they say
/// so by `sixteen_lanes`) quantize on 512-bit registers.
template <class R>
concept sixteen_lane_rule = R::bits == 8 && requires
{
  requires R::sixteen_lanes;
};

/// quantize_group_avx2 on sixteen lanes, from the group's blocks as
/// philox_blocks leaves them.
template <class R, bool Residual>
TERSE_FORCEINLINE void quantize_group_avx512(const R& rule, const __m512i blocks[4], quantizer_source src,
                                             std::uint8_t* out) noexcept
{
  for (int w = 0; w < 4; ++w) {
    __m512 p = _mm512_loadu_ps(src.g + 16 * w);
    if constexpr (Residual) {
      p = _mm512_add_ps(p, _mm512_loadu_ps(src.e_old + 16 * w));
    }
    const __m512i field = rule.template code16<Residual>(p, dither16(blocks[w]));
    if constexpr (Residual) {
      _mm512_storeu_ps(src.e_new + 16 * w, _mm512_sub_ps(p, rule.value16(field)));
    }
    // Unsigned saturation: 256 (reached without the clamp) stores 255.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * w), _mm512_maskz_cvtusepi32_epi8(0xFFFF, field));
  }
}
#endif

/// Quantizes `count` values (draw index of the first: j0) with whole
/// 64-element groups in SIMD, two at a time where it can, and ragged pieces
/// in the portable loop.
template <class R, bool Residual>
void quantize_avx2(const R& rule, const random_stream& stream, const philox8_keys& keys, quantizer_source src,
                   std::size_t count, std::uint64_t j0, field_cursor out, const prefetch_span& ahead = {}) noexcept
{
  std::size_t i = 0;
  while (i < count) {
    const std::uint64_t j = j0 + i;
    const auto in_group = static_cast<std::size_t>(j % draws_per_group);
    const std::size_t take = std::min<std::size_t>(draws_per_group - in_group, count - i);
    const std::uint64_t bit = out.bit0 + static_cast<std::uint64_t>(i) * R::bits;
    if (take != 64 || bit % 8 != 0) {
      quantize_portable<R, Residual>(rule, stream, src.shifted(i), take, j, {out.base, bit});
      i += take;
      continue;
    }
#if TERSE_QUANTIZER_AVX512
    // Four groups: more independent work per Philox round (measured best
    // with 32 registers; with AVX2's 16, two).
    if constexpr (sixteen_lane_rule<R>) {
      if (count - i >= 256) {
        __m512i blocks[4][4];
        philox_blocks<4>(keys, j / draws_per_group, blocks);
        for (int g = 0; g < 4; ++g) {
          const auto at = i + 64 * static_cast<std::size_t>(g);
          ahead.group(at);
          quantize_group_avx512<R, Residual>(rule, blocks[g], src.shifted(at), out.base + bit / 8 + 64 * g);
        }
        i += 256;
        continue;
      }
    }
    if (count - i >= 256) {
      __m256i words[16];
      philox_groups<4>(keys, j / draws_per_group, words);
      for (int g = 0; g < 4; ++g) {
        ahead.group(i + 64 * static_cast<std::size_t>(g));
        quantize_group_avx2<R, Residual>(rule, words + 4 * g, src.shifted(i + 64 * static_cast<std::size_t>(g)),
                                         out.base + bit / 8 + 8 * R::bits * static_cast<std::size_t>(g));
      }
      i += 256;
      continue;
    }
#endif
    if (count - i >= 128) {
      __m256i words[8];
      philox_groups<2>(keys, j / draws_per_group, words);
      ahead.group(i);
      ahead.group(i + 64);
      quantize_group_avx2<R, Residual>(rule, words, src.shifted(i), out.base + bit / 8);
      quantize_group_avx2<R, Residual>(rule, words + 4, src.shifted(i + 64), out.base + bit / 8 + 8 * R::bits);
      i += 128;
    } else {
      __m256i words[4];
      philox_groups<1>(keys, j / draws_per_group, words);
      ahead.group(i);
      quantize_group_avx2<R, Residual>(rule, words, src.shifted(i), out.base + bit / 8);
      i += 64;
    }
  }
}

/// Adds the decoded values of `count` fields into acc, eight at a time.
template <class R>
void dequantize_add_avx2(const R& rule, const std::uint8_t* base, std::uint64_t bit0, std::size_t count,
                         float* acc) noexcept
{
  std::size_t i = 0;
  for (; i < count && (bit0 + static_cast<std::uint64_t>(i) * R::bits) % 8 != 0; ++i) {
    acc[i] += rule.value(get_field(base, bit0 + static_cast<std::uint64_t>(i) * R::bits, R::bits));
  }
  for (; i + 8 <= count; i += 8) {
    const __m256i fields = load_fields8<R::bits>(base + (bit0 + static_cast<std::uint64_t>(i) * R::bits) / 8);
    _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i), rule.value8(fields)));
  }
  for (; i < count; ++i) {
    acc[i] += rule.value(get_field(base, bit0 + static_cast<std::uint64_t>(i) * R::bits, R::bits));
  }
}

#endif  // TERSE_QUANTIZER_AVX2

// --- dispatch --------------------------------------------------------------------

/// What a quantizer's encode keeps for the whole call: the stream and, with
/// AVX2, its broadcast Philox keys.
struct quantizer_draws {
  random_stream stream;
#if TERSE_QUANTIZER_AVX2
  philox8_keys keys;
  explicit quantizer_draws(const random_stream& s) noexcept : stream(s), keys(s)
  {
  }
#else
  explicit quantizer_draws(const random_stream& s) noexcept : stream(s)
  {
  }
#endif
};

template <class R, bool Residual>
void quantize(const R& rule, const quantizer_draws& draws, quantizer_source src, std::size_t count, std::uint64_t j0,
              field_cursor out, const prefetch_span& ahead = {}) noexcept
{
#if TERSE_QUANTIZER_AVX2
  quantize_avx2<R, Residual>(rule, draws.stream, draws.keys, src, count, j0, out, ahead);
#else
  (void)ahead;
  quantize_portable<R, Residual>(rule, draws.stream, src, count, j0, out);
#endif
}

template <class R>
void dequantize_add(const R& rule, const std::uint8_t* base, std::uint64_t bit0, std::size_t count, float* acc) noexcept
{
#if TERSE_QUANTIZER_AVX2
  dequantize_add_avx2(rule, base, bit0, count, acc);
#else
  dequantize_add_portable(rule, base, bit0, count, acc);
#endif
}

/// Zeroes the bits after the last of `count` fields in its byte.
inline void clear_padding(std::uint8_t* base, std::uint64_t count, unsigned bits) noexcept
{
  const std::uint64_t used = count * bits;  // callers' counts are buffer sizes: no overflow
  if (used % 8 != 0) {
    base[used / 8] = static_cast<std::uint8_t>(base[used / 8] & ((1u << (used % 8)) - 1u));
  }
}

}  // namespace terse::detail

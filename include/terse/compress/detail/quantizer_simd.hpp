#pragma once
/// @file
/// Which SIMD fast paths the quantizers compile, and Philox4x32-10 on groups
/// of eight blocks at once (AVX2, or AVX-512 where available).
///
/// `TERSE_QUANTIZER_AVX2` is 1 when the translation unit is compiled with
/// AVX2 and FMA (e.g. -march=native on a recent x86), for host code only;
/// `TERSE_QUANTIZER_AVX512` adds 512-bit Philox rounds when AVX-512F is on
/// (and, in uniform_host.hpp and quantizer_engine.hpp, 512-bit min/max and
/// 8-bit uniform quantizing).
/// Every fast path has a portable twin that produces the same bits; the
/// tests compare them. Compile every translation unit of a program with the
/// same -m flags: the dispatching functions are inline.
/// Define TERSE_NO_SIMD to force the portable paths.

#include <terse/core/config.hpp>
#include <terse/core/philox.hpp>

#include <cstdint>

#if !defined(TERSE_NO_SIMD) && defined(__AVX2__) && defined(__FMA__) && !defined(__CUDA_ARCH__)
#define TERSE_QUANTIZER_AVX2 1
#include <immintrin.h>
#else
#define TERSE_QUANTIZER_AVX2 0
#endif

#if TERSE_QUANTIZER_AVX2 && defined(__AVX512F__)
#define TERSE_QUANTIZER_AVX512 1  // Philox, min/max and 8-bit uniform on 512-bit registers
#else
#define TERSE_QUANTIZER_AVX512 0
#endif

#if TERSE_QUANTIZER_AVX2
namespace terse::detail {

#if TERSE_QUANTIZER_AVX512
using philox_vector = __m512i;  // eight blocks, one per 64-bit lane
TERSE_FORCEINLINE philox_vector philox_broadcast(std::uint32_t x) noexcept
{
  return _mm512_set1_epi32(static_cast<int>(x));
}
#else
using philox_vector = __m256i;  // four blocks, one per 64-bit lane
TERSE_FORCEINLINE philox_vector philox_broadcast(std::uint32_t x) noexcept
{
  return _mm256_set1_epi32(static_cast<int>(x));
}
#endif

/// A stream's Philox round keys and fixed counter words, broadcast once per
/// call so the per-block work is only the rounds.
struct philox8_keys {
  philox_vector key0[10];
  philox_vector key1[10];
  philox_vector stream;
  philox_vector step;

  explicit philox8_keys(const random_stream& s) noexcept
  {
    std::uint32_t k0 = static_cast<std::uint32_t>(s.seed);
    std::uint32_t k1 = static_cast<std::uint32_t>(s.seed >> 32);
    for (int round = 0; round < 10; ++round) {
      key0[round] = philox_broadcast(k0);
      key1[round] = philox_broadcast(k1);
      k0 += philox_w0;
      k1 += philox_w1;
    }
    stream = philox_broadcast(s.stream);
    step = philox_broadcast(s.step);
    // Rounds 0 and 1 of blocks below 2^32 (high counter word 0): half of
    // their products do not depend on the block, so compute them once.
    const std::uint32_t seed0 = static_cast<std::uint32_t>(s.seed);
    const std::uint32_t seed1 = static_cast<std::uint32_t>(s.seed >> 32);
    const std::uint64_t p1 = static_cast<std::uint64_t>(philox_m1) * s.stream;
    const std::uint32_t c0_after0 = static_cast<std::uint32_t>(p1 >> 32) ^ seed0;  // ^ high word 0
    const std::uint32_t c1_after0 = static_cast<std::uint32_t>(p1);
    const std::uint64_t p0 = static_cast<std::uint64_t>(philox_m0) * c0_after0;
    round0_c2 = philox_broadcast(s.step ^ seed1);
    round1_c0 = philox_broadcast(c1_after0 ^ (seed0 + philox_w0));
    round1_c2 = philox_broadcast(static_cast<std::uint32_t>(p0 >> 32) ^ (seed1 + philox_w1));
    round1_c3 = philox_broadcast(static_cast<std::uint32_t>(p0));
  }

  /// Constants of rounds 0 and 1 for blocks below 2^32 (see philox_groups).
  philox_vector round0_c2;  ///< xored into hi(m0 c0) to give c2 after round 0
  philox_vector round1_c0;  ///< xored into hi(m1 c2) to give c0 after round 1
  philox_vector round1_c2;  ///< xored into c3 (lo(m0 c0)) to give c2 after round 1
  philox_vector round1_c3;  ///< c3 after round 1
};

// Blocks live one per 64-bit lane with their counter words in the low 32
// bits; the high halves hold junk that _mul_epu32 ignores, so a round is
// two multiplies, two shifts and two three-way xors per register.

#if TERSE_QUANTIZER_AVX512
// The zero-masked forms with a full mask: the plain ones start from
// _mm512_undefined_epi32(), which g++ 12 reports as maybe-uninitialized.
inline constexpr __mmask8 all8 = 0xFF;

/// The high words of eight 64-bit products in the low halves (junk in the
/// high halves): a shuffle, which runs beside the multiplies rather than
/// on their port as a 64-bit shift would.
TERSE_FORCEINLINE __m512i high_words(__m512i products) noexcept
{
  return _mm512_maskz_shuffle_epi32(0xFFFF, products, static_cast<_MM_PERM_ENUM>(0xF5));  // dwords 1, 1, 3, 3
}

/// One Philox round on eight blocks.
TERSE_FORCEINLINE void philox_round8(__m512i c[4], __m512i key0, __m512i key1) noexcept
{
  const __m512i p0 = _mm512_maskz_mul_epu32(all8, c[0], _mm512_set1_epi32(static_cast<int>(philox_m0)));
  const __m512i p1 = _mm512_maskz_mul_epu32(all8, c[2], _mm512_set1_epi32(static_cast<int>(philox_m1)));
  c[0] = _mm512_ternarylogic_epi32(high_words(p1), c[1], key0, 0x96);  // three-way xor
  c[1] = p1;
  c[2] = _mm512_ternarylogic_epi32(high_words(p0), c[3], key1, 0x96);
  c[3] = p0;
}

// Full unrolling for g++ and clang (nvcc's front end does not know the
// GCC spelling and warns).
#if defined(__GNUC__) && !defined(__CUDACC__)
#define TERSE_PHILOX_UNROLL(n) _Pragma(TERSE_PHILOX_UNROLL_TEXT(GCC unroll n))
#define TERSE_PHILOX_UNROLL_TEXT(x) #x
#else
#define TERSE_PHILOX_UNROLL(n)
#endif

/// Rounds First..9 on `Groups` groups of eight blocks, unrolled so the
/// counters stay in registers (a loop from a run-time first round kept
/// them in memory).
template <int First, int Groups>
TERSE_FORCEINLINE void philox_rounds8(const philox8_keys& keys, __m512i c[Groups][4]) noexcept
{
  TERSE_PHILOX_UNROLL(10)
  for (int round = First; round < 10; ++round) {
    TERSE_PHILOX_UNROLL(4)
    for (int g = 0; g < Groups; ++g) {
      philox_round8(c[g], keys.key0[round], keys.key1[round]);
    }
  }
}

/// Philox4x32-10 of the 8 * groups blocks from 8 * group: c[g][w] holds
/// word w of block 8 * (group + g) + l in the low half of 64-bit lane l
/// (junk in the high halves). Equals random_stream::block.
template <int Groups>
TERSE_FORCEINLINE void philox_blocks(const philox8_keys& keys, std::uint64_t group, __m512i c[Groups][4]) noexcept
{
  const std::uint64_t last = (group + Groups) * 8 - 1;
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(philox_m0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(philox_m1));
  if ((last >> 32) == 0) {
    // Blocks below 2^32: rounds 0 and 1 with their block-independent halves
    // precomputed (two products per block instead of four).
    for (int g = 0; g < Groups; ++g) {
      const std::uint64_t first = (group + static_cast<std::uint64_t>(g)) * 8;
      const __m512i c0 =
          _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(first)), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
      const __m512i p0 = _mm512_maskz_mul_epu32(all8, c0, m0);
      const __m512i c2 = _mm512_xor_si512(high_words(p0), keys.round0_c2);
      const __m512i p1 = _mm512_maskz_mul_epu32(all8, c2, m1);
      c[g][0] = _mm512_xor_si512(high_words(p1), keys.round1_c0);
      c[g][1] = p1;
      c[g][2] = _mm512_xor_si512(p0, keys.round1_c2);
      c[g][3] = keys.round1_c3;
    }
    philox_rounds8<2, Groups>(keys, c);
  } else {
    for (int g = 0; g < Groups; ++g) {
      const std::uint64_t first = (group + static_cast<std::uint64_t>(g)) * 8;  // the low word cannot carry in 8
      c[g][0] = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(static_cast<std::uint32_t>(first))),
                                 _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
      c[g][1] = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(first >> 32)));
      c[g][2] = keys.stream;
      c[g][3] = keys.step;
    }
    philox_rounds8<0, Groups>(keys, c);
  }
}

/// As philox_blocks, with out[4 * g + w] holding word w of blocks
/// 8 * (group + g) + l in lane l.
template <int Groups>
TERSE_FORCEINLINE void philox_groups(const philox8_keys& keys, std::uint64_t group, __m256i out[4 * Groups]) noexcept
{
  __m512i c[Groups][4];
  philox_blocks<Groups>(keys, group, c);
  for (int g = 0; g < Groups; ++g) {
    for (int w = 0; w < 4; ++w) {
      out[4 * g + w] = _mm512_maskz_cvtepi64_epi32(all8, c[g][w]);
    }
  }
}
#else
/// One Philox round on four blocks.
TERSE_FORCEINLINE void philox_round4(__m256i c[4], __m256i key0, __m256i key1) noexcept
{
  const __m256i p0 = _mm256_mul_epu32(c[0], _mm256_set1_epi32(static_cast<int>(philox_m0)));
  const __m256i p1 = _mm256_mul_epu32(c[2], _mm256_set1_epi32(static_cast<int>(philox_m1)));
  c[0] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c[1]), key0);
  c[1] = p1;
  c[2] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c[3]), key1);
  c[3] = p0;
}

/// As above, on AVX2: blocks {0, 2, 4, 6} and {1, 3, 5, 7} of each group in
/// two registers, interleaved into lanes at the end.
template <int Groups>
TERSE_FORCEINLINE void philox_groups(const philox8_keys& keys, std::uint64_t group, __m256i out[4 * Groups]) noexcept
{
  __m256i c[2 * Groups][4];
  const std::uint64_t last = (group + Groups) * 8 - 1;
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(philox_m0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(philox_m1));
  int round = 0;
  if ((last >> 32) == 0) {  // rounds 0 and 1 with precomputed halves, as above
    for (int g = 0; g < Groups; ++g) {
      const __m256i low = _mm256_set1_epi64x(static_cast<long long>((group + static_cast<std::uint64_t>(g)) * 8));
      for (int h = 0; h < 2; ++h) {
        const __m256i c0 =
            _mm256_add_epi64(low, h == 0 ? _mm256_setr_epi64x(0, 2, 4, 6) : _mm256_setr_epi64x(1, 3, 5, 7));
        const __m256i p0 = _mm256_mul_epu32(c0, m0);
        const __m256i c2 = _mm256_xor_si256(_mm256_srli_epi64(p0, 32), keys.round0_c2);
        const __m256i p1 = _mm256_mul_epu32(c2, m1);
        c[2 * g + h][0] = _mm256_xor_si256(_mm256_srli_epi64(p1, 32), keys.round1_c0);
        c[2 * g + h][1] = p1;
        c[2 * g + h][2] = _mm256_xor_si256(p0, keys.round1_c2);
        c[2 * g + h][3] = keys.round1_c3;
      }
    }
    round = 2;
  } else {
    for (int g = 0; g < Groups; ++g) {
      const std::uint64_t first = (group + static_cast<std::uint64_t>(g)) * 8;  // the low word cannot carry in 8
      const __m256i low = _mm256_set1_epi64x(static_cast<long long>(static_cast<std::uint32_t>(first)));
      c[2 * g][0] = _mm256_add_epi64(low, _mm256_setr_epi64x(0, 2, 4, 6));
      c[2 * g + 1][0] = _mm256_add_epi64(low, _mm256_setr_epi64x(1, 3, 5, 7));
      for (int h = 0; h < 2; ++h) {
        c[2 * g + h][1] = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(first >> 32)));
        c[2 * g + h][2] = keys.stream;
        c[2 * g + h][3] = keys.step;
      }
    }
  }
  for (; round < 10; ++round) {
    for (int r = 0; r < 2 * Groups; ++r) {
      philox_round4(c[r], keys.key0[round], keys.key1[round]);
    }
  }
  for (int g = 0; g < Groups; ++g) {
    for (int w = 0; w < 4; ++w) {
      out[4 * g + w] = _mm256_blend_epi32(c[2 * g][w], _mm256_slli_epi64(c[2 * g + 1][w], 32), 0xAA);
    }
  }
}
#endif

/// Philox4x32-10 of blocks 8*group .. 8*group + 7: out[w] holds word w of
/// the eight blocks, block 8*group + l in lane l.
TERSE_FORCEINLINE void philox8(const philox8_keys& keys, std::uint64_t group, __m256i out[4]) noexcept
{
  philox_groups<1>(keys, group, out);
}

/// The dithers u = (k + 1/2) 2^-16 of the low (half 0) or high (half 1)
/// 16 bits of eight words: the draws of eight consecutive elements.
TERSE_FORCEINLINE __m256 dither8(__m256i words, int half) noexcept
{
  const __m256i k = half == 0 ? _mm256_and_si256(words, _mm256_set1_epi32(0xffff)) : _mm256_srli_epi32(words, 16);
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(k), _mm256_set1_ps(0x1p-16f), _mm256_set1_ps(0x1p-17f));
}

#if TERSE_QUANTIZER_AVX512
/// The dithers of the sixteen consecutive elements that draw from word w of
/// eight blocks (`blocks`, as philox_blocks leaves it): the low halves in
/// lanes 0-7, the high halves in lanes 8-15. Each 16-bit draw k is rotated
/// into mantissa bits 7-22 under the exponent of 1, with bit 6 set, which
/// makes 1 + (k + 1/2) 2^-16 exactly; less 1 that is dither(k), exactly.
TERSE_FORCEINLINE __m512 dither16(__m512i blocks) noexcept
{
  const __m512i low_words = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
  const __m512i rotations = _mm512_setr_epi32(7, 7, 7, 7, 7, 7, 7, 7, 23, 23, 23, 23, 23, 23, 23, 23);
  const __m512i twice = _mm512_maskz_permutexvar_epi32(0xFFFF, low_words, blocks);
  const __m512i rotated = _mm512_maskz_rolv_epi32(0xFFFF, twice, rotations);
  // (rotated & 0x007fff80) | 0x3f800040
  const __m512i one_plus =
      _mm512_ternarylogic_epi32(rotated, _mm512_set1_epi32(0x007fff80), _mm512_set1_epi32(0x3f800040), 0xEA);
  return _mm512_sub_ps(_mm512_castsi512_ps(one_plus), _mm512_set1_ps(1.0f));
}
#endif

}  // namespace terse::detail
#endif

#pragma once
/// @file
/// The one pass over the input every sparsifier makes: keep each element
/// whose magnitude key is at least a threshold, as (index, value bits) pairs
/// in index order. Branch-free compaction: an AVX2 path (8 lanes through a
/// permutation table) when the compiler targets AVX2, and a portable scalar
/// loop otherwise; both produce the same pairs (the tests check it).
///
/// Output contract: `out_index` and `out_bits` have room for `n` entries
/// (the kernels may write, but not count, up to the number of elements read
/// so far); they are byte pointers so a payload buffer of any alignment can
/// be written directly.

#include <terse/compress/detail/sparse_math.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace terse::detail {

/// Scalar fallback (always compiled; the tests compare it with the fast
/// path). Returns how many pairs it wrote.
inline std::size_t filter_at_least_scalar(const float* in, std::size_t n, std::uint32_t threshold_key,
                                          std::uint32_t base_index, std::byte* out_index, std::byte* out_bits) noexcept
{
  std::size_t written = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, in + i, 4);
    const auto index = static_cast<std::uint32_t>(base_index + i);
    std::memcpy(out_index + 4 * written, &index, 4);
    std::memcpy(out_bits + 4 * written, &bits, 4);
    written += magnitude_key_of_bits(bits) >= threshold_key ? 1u : 0u;
  }
  return written;
}

/// Residual variant, scalar: p = g + e_old, written to `p_out`, then filtered.
/// When `zero_selected` is set the selected entries of `p_out` are zeroed
/// (e_new = p - decode(p) for a codec that sends exactly the filtered set).
inline std::size_t filter_residual_scalar(const float* g, const float* e_old, float* p_out, std::size_t n,
                                          std::uint32_t threshold_key, bool zero_selected, std::uint32_t base_index,
                                          std::byte* out_index, std::byte* out_bits) noexcept
{
  std::size_t written = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float p = g[i] + e_old[i];
    const std::uint32_t bits = float_bits(p);
    const bool keep = magnitude_key_of_bits(bits) >= threshold_key;
    p_out[i] = (keep && zero_selected) ? 0.0f : p;
    const auto index = static_cast<std::uint32_t>(base_index + i);
    std::memcpy(out_index + 4 * written, &index, 4);
    std::memcpy(out_bits + 4 * written, &bits, 4);
    written += keep ? 1u : 0u;
  }
  return written;
}

#if defined(__AVX2__)
/// For each 8-bit lane mask, the lane numbers of the set bits first: the
/// permutation that packs the kept lanes to the front.
inline constexpr auto compaction_table = [] {
  std::array<std::array<std::uint32_t, 8>, 256> table{};
  for (unsigned mask = 0; mask < 256; ++mask) {
    unsigned at = 0;
    for (unsigned lane = 0; lane < 8; ++lane) {
      if ((mask >> lane) & 1u) {
        table[mask][at++] = lane;
      }
    }
    for (unsigned lane = at; lane < 8; ++lane) {
      table[mask][lane] = 0;
    }
  }
  return table;
}();

/// Packs the lanes of (index, bits) selected by `key >= threshold` to
/// the output and returns how many it kept.
TERSE_FORCEINLINE unsigned compact8(__m256i bits, __m256i index, __m256i threshold_minus_one, std::byte* out_index,
                                    std::byte* out_bits) noexcept
{
  const __m256i key = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  // key <= 0x7fffffff and threshold - 1 >= -1, so a signed compare is exact.
  const __m256i keep = _mm256_cmpgt_epi32(key, threshold_minus_one);
  const auto mask = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(keep)));
  const __m256i permutation = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(compaction_table[mask].data()));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out_index), _mm256_permutevar8x32_epi32(index, permutation));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out_bits), _mm256_permutevar8x32_epi32(bits, permutation));
  return static_cast<unsigned>(__builtin_popcount(mask));
}
#endif

/// Appends (index, bits) of every in[i] with magnitude_key(in[i]) >=
/// threshold_key, indices base_index + i, in index order. Returns the count.
inline std::size_t filter_at_least(const float* in, std::size_t n, std::uint32_t threshold_key,
                                   std::uint32_t base_index, std::byte* out_index, std::byte* out_bits) noexcept
{
  std::size_t written = 0;
  std::size_t i = 0;
#if defined(__AVX2__)
  const __m256i threshold_minus_one = _mm256_set1_epi32(static_cast<int>(threshold_key) - 1);
  __m256i index =
      _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(base_index)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i eight = _mm256_set1_epi32(8);
  for (; i + 8 <= n; i += 8) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    written += compact8(bits, index, threshold_minus_one, out_index + 4 * written, out_bits + 4 * written);
    index = _mm256_add_epi32(index, eight);
  }
#endif
  written += filter_at_least_scalar(in + i, n - i, threshold_key, static_cast<std::uint32_t>(base_index + i),
                                    out_index + 4 * written, out_bits + 4 * written);
  return written;
}

/// The residual variant of filter_at_least: reads g and e_old, writes p =
/// g + e_old (or 0 where selected, with `zero_selected`) to p_out, and
/// appends the selected (index, bits of p).
inline std::size_t filter_residual(const float* g, const float* e_old, float* p_out, std::size_t n,
                                   std::uint32_t threshold_key, bool zero_selected, std::uint32_t base_index,
                                   std::byte* out_index, std::byte* out_bits) noexcept
{
  std::size_t written = 0;
  std::size_t i = 0;
#if defined(__AVX2__)
  const __m256i threshold_minus_one = _mm256_set1_epi32(static_cast<int>(threshold_key) - 1);
  const __m256i sign_clear = _mm256_set1_epi32(0x7fffffff);
  __m256i index =
      _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(base_index)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i eight = _mm256_set1_epi32(8);
  for (; i + 8 <= n; i += 8) {
    const __m256 p = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_loadu_ps(e_old + i));
    const __m256i bits = _mm256_castps_si256(p);
    if (zero_selected) {
      const __m256i keep = _mm256_cmpgt_epi32(_mm256_and_si256(bits, sign_clear), threshold_minus_one);
      _mm256_storeu_ps(p_out + i, _mm256_andnot_ps(_mm256_castsi256_ps(keep), p));
    } else {
      _mm256_storeu_ps(p_out + i, p);
    }
    written += compact8(bits, index, threshold_minus_one, out_index + 4 * written, out_bits + 4 * written);
    index = _mm256_add_epi32(index, eight);
  }
#endif
  written += filter_residual_scalar(g + i, e_old + i, p_out + i, n - i, threshold_key, zero_selected,
                                    static_cast<std::uint32_t>(base_index + i), out_index + 4 * written,
                                    out_bits + 4 * written);
  return written;
}

/// Runs a filter chunk by chunk into a small staging area and copies each
/// chunk's pairs into a payload body that has room for n pairs: indices to
/// the body's start, values (for now) to its second half, 4n bytes in.
/// `filter(at, len, stage_index, stage_bits) -> kept` filters elements
/// [at, at + len). Staging keeps the two output streams from sitting a
/// multiple of 4 KiB apart, which thrashes the L1 (8x slower, measured).
template <class Filter>
std::size_t filter_to_body(std::size_t n, std::byte* body, Filter filter)
{
  constexpr std::size_t chunk = 2048;
  constexpr std::size_t skew = 544;  // 2176 bytes mod 4096 between the two staging arrays
  alignas(64) std::uint32_t stage[2 * chunk + skew];
  std::byte* stage_index = reinterpret_cast<std::byte*>(stage);
  std::byte* stage_bits = reinterpret_cast<std::byte*>(stage + chunk + skew);
  std::size_t written = 0;
  for (std::size_t at = 0; at < n; at += chunk) {
    const std::size_t len = n - at < chunk ? n - at : chunk;
    const std::size_t kept = filter(at, len, stage_index, stage_bits);
    std::memcpy(body + 4 * written, stage_index, 4 * kept);
    std::memcpy(body + 4 * n + 4 * written, stage_bits, 4 * kept);
    written += kept;
  }
  return written;
}

// --- selection among candidates ------------------------------------------------

/// How many keys lie above a band, and how many in it.
struct band_counts {
  std::size_t above = 0;
  std::size_t inside = 0;
};

/// Scalar fallback of band_keys.
inline band_counts band_keys_scalar(const std::uint32_t* bits, std::size_t c, std::uint32_t lo, std::uint32_t hi,
                                    std::uint32_t* out_keys) noexcept
{
  band_counts counts;
  for (std::size_t j = 0; j < c; ++j) {
    const std::uint32_t key = magnitude_key_of_bits(bits[j]);
    out_keys[counts.inside] = key;
    counts.inside += (key >= lo && key <= hi) ? 1u : 0u;
    counts.above += key > hi ? 1u : 0u;
  }
  return counts;
}

/// Counts the keys of `bits` above `hi` and copies those in [lo, hi] to
/// out_keys (room for c). hi <= 0x7fffffff.
inline band_counts band_keys(const std::uint32_t* bits, std::size_t c, std::uint32_t lo, std::uint32_t hi,
                             std::uint32_t* out_keys) noexcept
{
  band_counts counts;
  std::size_t j = 0;
#if defined(__AVX2__)
  const __m256i sign_clear = _mm256_set1_epi32(0x7fffffff);
  const __m256i lo_minus_one = _mm256_set1_epi32(static_cast<int>(lo) - 1);
  const __m256i hi_v = _mm256_set1_epi32(static_cast<int>(hi));
  for (; j + 8 <= c; j += 8) {
    const __m256i key = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits + j)), sign_clear);
    const __m256i above = _mm256_cmpgt_epi32(key, hi_v);
    const __m256i inside = _mm256_andnot_si256(above, _mm256_cmpgt_epi32(key, lo_minus_one));
    const auto above_mask = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(above)));
    const auto inside_mask = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(inside)));
    const __m256i permutation =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(compaction_table[inside_mask].data()));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out_keys + counts.inside),
                        _mm256_permutevar8x32_epi32(key, permutation));
    counts.inside += static_cast<unsigned>(__builtin_popcount(inside_mask));
    counts.above += static_cast<unsigned>(__builtin_popcount(above_mask));
  }
#endif
  const band_counts tail = band_keys_scalar(bits + j, c - j, lo, hi, out_keys + counts.inside);
  counts.above += tail.above;
  counts.inside += tail.inside;
  return counts;
}

/// Scalar fallback of compact_pairs_at_least.
inline std::size_t compact_pairs_at_least_scalar(const std::uint32_t* index, const std::uint32_t* bits, std::size_t c,
                                                 std::uint32_t threshold_key, std::byte* out_index,
                                                 std::byte* out_bits) noexcept
{
  std::size_t written = 0;
  for (std::size_t j = 0; j < c; ++j) {
    std::memcpy(out_index + 4 * written, index + j, 4);
    std::memcpy(out_bits + 4 * written, bits + j, 4);
    written += magnitude_key_of_bits(bits[j]) >= threshold_key ? 1u : 0u;
  }
  return written;
}

/// Keeps the (index, bits) pairs whose key is >= threshold_key, in order.
/// The outputs have room for c pairs.
inline std::size_t compact_pairs_at_least(const std::uint32_t* index, const std::uint32_t* bits, std::size_t c,
                                          std::uint32_t threshold_key, std::byte* out_index,
                                          std::byte* out_bits) noexcept
{
  std::size_t written = 0;
  std::size_t j = 0;
#if defined(__AVX2__)
  const __m256i threshold_minus_one = _mm256_set1_epi32(static_cast<int>(threshold_key) - 1);
  for (; j + 8 <= c; j += 8) {
    written += compact8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits + j)),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index + j)), threshold_minus_one,
                        out_index + 4 * written, out_bits + 4 * written);
  }
#endif
  written += compact_pairs_at_least_scalar(index + j, bits + j, c - j, threshold_key, out_index + 4 * written,
                                           out_bits + 4 * written);
  return written;
}

}  // namespace terse::detail

#pragma once
/// @file
/// Exact top-k selection on the host in about one pass over the input:
///
/// 1. estimate a low threshold from a jittered strided sample of cache-line
///    blocks (with a safety margin, so at least k elements pass it with high
///    probability);
/// 2. one branch-free filter pass collects the candidates (key >= threshold)
///    as (index, value) pairs in index order;
/// 3. the k-th largest key K among the candidates (about 1.2k of them) is
///    found exactly: a sample of their keys brackets K, one vectorised pass
///    keeps the keys inside the bracket, nth_element finishes on those;
/// 4. the selection is every candidate with key > K, plus the first
///    k - #(key > K) candidates with key == K in index order (ties go to the
///    lower index).
///
/// Correctness never depends on the sample: with fewer than k candidates the
/// filter runs again with a lower threshold, finally with "any nonzero", and
/// zeros (key 0) fill the rest in index order. Every threshold is at most
/// `non_finite_key`, so a NaN or Inf anywhere in the input is always a
/// candidate and the encoder raises errc::non_finite.

#include <terse/compress/detail/sparse_filter.hpp>
#include <terse/compress/detail/sparse_math.hpp>
#include <terse/core/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace terse::detail {

/// Buffers a sparsifier reuses call after call (they only grow).
struct sparse_workspace {
  std::vector<std::uint32_t> keys;    ///< selection scratch
  std::vector<std::uint32_t> sample;  ///< sampled keys
  std::size_t count = 0;              ///< candidates held

  /// Candidate indices (ascending) and value bits, `capacity()` of each.
  std::uint32_t* index() noexcept { return pairs_.data(); }
  std::uint32_t* bits() noexcept { return pairs_.empty() ? pairs_.data() : pairs_.data() + capacity_ + skew; }
  const std::uint32_t* index() const noexcept { return pairs_.data(); }
  const std::uint32_t* bits() const noexcept
  {
    return pairs_.empty() ? pairs_.data() : pairs_.data() + capacity_ + skew;
  }
  std::size_t capacity() const noexcept { return capacity_; }

  /// Room for `wanted` candidates; the `count` held survive growth.
  void reserve_candidates(std::size_t wanted)
  {
    if (wanted <= capacity_) {
      return;
    }
    const std::size_t grown = std::max(wanted, capacity_ + capacity_ / 2);
    std::vector<std::uint32_t> next(2 * grown + skew);
    std::copy_n(index(), count, next.data());
    std::copy_n(bits(), count, next.data() + grown + skew);
    pairs_ = std::move(next);
    capacity_ = grown;
  }

 private:
  /// The value array starts 2176 bytes (mod 4096) away from the index array:
  /// two store streams a multiple of 4 KiB apart thrash the L1 (its sets,
  /// and on AMD the linear-address tags), which measured 8x slower.
  static constexpr std::size_t skew = 544;
  std::vector<std::uint32_t> pairs_;
  std::size_t capacity_ = 0;
};

/// Chunk of the filter pass between capacity checks: the candidate buffers
/// stay near the true count instead of growing to n.
inline constexpr std::size_t filter_chunk = std::size_t{1} << 16;

inline std::byte* byte_ptr(std::uint32_t* words, std::size_t at) noexcept
{
  return reinterpret_cast<std::byte*>(words + at);
}

/// Appends every in[i] with key >= threshold_key to the candidates. With a
/// `limit`, gives up (returning false) once more than `limit` have passed:
/// a threshold that lets far too many through is not worth finishing.
inline bool filter_into(sparse_workspace& ws, const float* in, std::size_t n, std::uint32_t threshold_key,
                        std::size_t limit = ~std::size_t{0})
{
  for (std::size_t at = 0; at < n; at += filter_chunk) {
    const std::size_t len = std::min(filter_chunk, n - at);
    ws.reserve_candidates(ws.count + len);
    ws.count += filter_at_least(in + at, len, threshold_key, static_cast<std::uint32_t>(at),
                                byte_ptr(ws.index(), ws.count), byte_ptr(ws.bits(), ws.count));
    if (ws.count > limit) {
      return false;
    }
  }
  return true;
}

/// filter_into on p = g + e_old, writing p to p_out (zeroed where selected
/// with `zero_selected`).
inline bool filter_residual_into(sparse_workspace& ws, const float* g, const float* e_old, float* p_out, std::size_t n,
                                 std::uint32_t threshold_key, bool zero_selected, std::size_t limit = ~std::size_t{0})
{
  for (std::size_t at = 0; at < n; at += filter_chunk) {
    const std::size_t len = std::min(filter_chunk, n - at);
    ws.reserve_candidates(ws.count + len);
    ws.count +=
        filter_residual(g + at, e_old + at, p_out + at, len, threshold_key, zero_selected,
                        static_cast<std::uint32_t>(at), byte_ptr(ws.index(), ws.count), byte_ptr(ws.bits(), ws.count));
    if (ws.count > limit) {
      return false;  // p_out is only partly written: the caller starts over
    }
  }
  return true;
}

/// Raises errc::non_finite when a candidate is NaN or ±Inf. (Every
/// threshold is at most non_finite_key, so this sees every such input.)
inline void check_candidates_finite(const sparse_workspace& ws, const char* codec)
{
  std::uint32_t worst = 0;
  for (std::size_t j = 0; j < ws.count; ++j) {
    worst = std::max(worst, magnitude_key_of_bits(ws.bits()[j]));
  }
  TERSE_CHECK(worst < non_finite_key, errc::non_finite,
              std::string(codec) + ": the input holds NaN or Inf; sparsifiers code finite values only");
}

/// The t-th largest (1-based) of keys[0, c); reorders keys.
inline std::uint32_t kth_largest(std::uint32_t* keys, std::size_t c, std::size_t t) noexcept
{
  std::nth_element(keys, keys + (t - 1), keys + c, std::greater<>{});
  return keys[t - 1];
}

/// The key K of the k-th largest candidate, how many candidates have a key
/// above K, and how many equal it (the selection takes the first
/// k - above of those: ties go to the lower index).
struct selection_cut {
  std::uint32_t key = 0;
  std::size_t above = 0;
  std::size_t equal = 0;
};

inline void grow_keys(sparse_workspace& ws, std::size_t count)
{
  if (ws.keys.size() < count) {
    ws.keys.resize(std::max(count, ws.keys.size() + ws.keys.size() / 2));
  }
}

/// The t-th largest key among the candidates (1 <= t <= count), in about
/// one pass: Floyd-Rivest style, a sample of the candidates' keys brackets
/// the answer, one vectorised pass keeps the keys inside the bracket, and
/// nth_element finishes on those few. Falls back to nth_element over all
/// keys when the bracket misses (which only costs time).
inline std::uint32_t kth_largest_candidate(sparse_workspace& ws, std::size_t t)
{
  const std::size_t c = ws.count;
  grow_keys(ws, c);
  std::uint32_t* keys = ws.keys.data();
  const auto all_keys = [&] {
    for (std::size_t j = 0; j < c; ++j) {
      keys[j] = magnitude_key_of_bits(ws.bits()[j]);
    }
    return kth_largest(keys, c, t);
  };
  if (c <= 8192) {
    return all_keys();
  }
  const std::size_t s = std::min<std::size_t>(c / 8, 16384);
  const std::size_t stride = c / s;
  if (ws.sample.size() < s) {
    ws.sample.resize(s);
  }
  for (std::size_t j = 0; j < s; ++j) {
    ws.sample[j] = magnitude_key_of_bits(ws.bits()[j * stride + sample_jitter(static_cast<std::uint32_t>(j)) % stride]);
  }
  const double p = static_cast<double>(t) / static_cast<double>(c);
  const double expected = p * static_cast<double>(s);
  const double margin = 4.0 * std::sqrt(expected * (1.0 - p)) + 16.0;
  const double hi_rank = std::floor(expected - margin);  // 1-based rank in the sample, descending
  const double lo_rank = std::ceil(expected + margin);
  std::uint32_t hi = 0x7fffffffu;  // no key is above it
  std::uint32_t lo = 0;
  auto* sample = ws.sample.data();
  if (lo_rank <= static_cast<double>(s)) {
    lo = kth_largest(sample, s, static_cast<std::size_t>(lo_rank));
  }
  if (hi_rank >= 1.0) {
    // After the first nth_element the larger keys sit before lo's position.
    const auto rank = static_cast<std::size_t>(hi_rank);
    const std::size_t prefix = lo_rank <= static_cast<double>(s) ? static_cast<std::size_t>(lo_rank) : s;
    hi = kth_largest(sample, prefix, rank);
  }
  const band_counts band = band_keys(ws.bits(), c, lo, hi, keys);
  if (band.above < t && t <= band.above + band.inside) {
    return kth_largest(keys, band.inside, t - band.above);
  }
  return all_keys();
}

inline selection_cut cut_candidates(sparse_workspace& ws, std::size_t k)
{
  selection_cut cut;
  cut.key = kth_largest_candidate(ws, k);
  for (std::size_t j = 0; j < ws.count; ++j) {
    const std::uint32_t key = magnitude_key_of_bits(ws.bits()[j]);
    cut.above += key > cut.key ? 1u : 0u;
    cut.equal += key == cut.key ? 1u : 0u;
  }
  return cut;
}

/// Writes the k selected candidates (index order) to the payload's index and
/// value arrays. Reorders the candidate buffers.
inline void emit_cut(sparse_workspace& ws, selection_cut cut, std::size_t k, std::byte* out_index,
                     std::byte* out_bits) noexcept
{
  if (cut.above + cut.equal == k) {
    // Every tie is taken: a vectorised compaction in place, then a copy.
    compact_pairs_at_least(ws.index(), ws.bits(), ws.count, cut.key, byte_ptr(ws.index(), 0), byte_ptr(ws.bits(), 0));
    std::memcpy(out_index, ws.index(), 4 * k);
    std::memcpy(out_bits, ws.bits(), 4 * k);
    return;
  }
  std::size_t written = 0;
  std::size_t ties = k - cut.above;
  for (std::size_t j = 0; j < ws.count && written < k; ++j) {
    const std::uint32_t key = magnitude_key_of_bits(ws.bits()[j]);
    const bool tie = key == cut.key;
    const bool take = key > cut.key || (tie && ties != 0);
    ties -= (tie && take) ? 1u : 0u;
    std::memcpy(out_index + 4 * written, &ws.index()[j], 4);
    std::memcpy(out_bits + 4 * written, &ws.bits()[j], 4);
    written += take ? 1u : 0u;
  }
}

/// Writes every candidate plus the first k - count zeros of `values` (the
/// positions that are not candidates when the threshold was key 1), merged
/// in index order.
inline void emit_with_zero_fill(const sparse_workspace& ws, const float* values, std::size_t k, std::byte* out_index,
                                std::byte* out_bits) noexcept
{
  std::size_t zeros_needed = k - ws.count;
  std::uint64_t position = 0;
  std::size_t j = 0;
  for (std::size_t written = 0; written < k; ++written) {
    const std::uint64_t next_candidate = j < ws.count ? ws.index()[j] : std::numeric_limits<std::uint64_t>::max();
    std::uint32_t index;
    std::uint32_t bits;
    if (zeros_needed != 0 && position < next_candidate) {
      index = static_cast<std::uint32_t>(position);
      bits = float_bits(values[position]);  // ±0: send the sign that is there
      --zeros_needed;
      ++position;
    } else {
      index = ws.index()[j];
      bits = ws.bits()[j];
      position = std::uint64_t{index} + 1;
      ++j;
    }
    std::memcpy(out_index + 4 * written, &index, 4);
    std::memcpy(out_bits + 4 * written, &bits, 4);
  }
}

/// Exact selection over all of values[0, n) (small inputs): returns K.
inline std::uint32_t select_exact_small(const float* values, std::size_t n, std::size_t k, sparse_workspace& ws,
                                        std::byte* out_index, std::byte* out_bits, const char* codec)
{
  if (ws.keys.size() < n) {
    ws.keys.resize(n);
  }
  std::uint32_t worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ws.keys[i] = magnitude_key(values[i]);
    worst = std::max(worst, ws.keys[i]);
  }
  TERSE_CHECK(worst < non_finite_key, errc::non_finite,
              std::string(codec) + ": the input holds NaN or Inf; sparsifiers code finite values only");
  const std::uint32_t key = kth_largest(ws.keys.data(), n, k);
  std::size_t above = 0;
  for (std::size_t j = 0; j + 1 < k; ++j) {
    above += ws.keys[j] > key ? 1u : 0u;
  }
  std::size_t ties = k - above;
  std::size_t written = 0;
  for (std::size_t i = 0; i < n && written < k; ++i) {
    const std::uint32_t bits = float_bits(values[i]);
    const std::uint32_t value_key = magnitude_key_of_bits(bits);
    const bool tie = value_key == key;
    const bool take = value_key > key || (tie && ties != 0);
    ties -= (tie && take) ? 1u : 0u;
    const auto index = static_cast<std::uint32_t>(i);
    std::memcpy(out_index + 4 * written, &index, 4);
    std::memcpy(out_bits + 4 * written, &bits, 4);
    written += take ? 1u : 0u;
  }
  return key;
}

/// Inputs up to this size are selected exactly without sampling.
inline constexpr std::size_t small_selection = std::size_t{1} << 14;

/// Where the values to select from come from: plain input, or p = g + e_old
/// computed during the first pass (and written to p_out).
struct plain_values {
  const float* in;
  float at(std::size_t i) const noexcept { return in[i]; }
  bool first_pass(sparse_workspace& ws, std::size_t n, std::uint32_t threshold_key,
                  std::size_t limit = ~std::size_t{0}) const
  {
    return filter_into(ws, in, n, threshold_key, limit);
  }
  void materialize(std::size_t) const noexcept {}
  const float* values() const noexcept { return in; }
};

struct residual_values {
  const float* g;
  const float* e_old;
  float* p_out;
  float at(std::size_t i) const noexcept { return g[i] + e_old[i]; }
  bool first_pass(sparse_workspace& ws, std::size_t n, std::uint32_t threshold_key,
                  std::size_t limit = ~std::size_t{0}) const
  {
    return filter_residual_into(ws, g, e_old, p_out, n, threshold_key, false, limit);
  }
  void materialize(std::size_t n) const noexcept
  {
    for (std::size_t i = 0; i < n; ++i) {
      p_out[i] = g[i] + e_old[i];
    }
  }
  const float* values() const noexcept { return p_out; }  // valid after first_pass or materialize
};

/// k = n: every value, in order (still refusing NaN and Inf).
template <class Source>
void select_all(const Source& source, std::size_t n, std::byte* out_index, std::byte* out_bits, const char* codec)
{
  source.materialize(n);
  const float* values = source.values();
  std::uint32_t worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto index = static_cast<std::uint32_t>(i);
    const std::uint32_t bits = float_bits(values[i]);
    worst = std::max(worst, magnitude_key_of_bits(bits));
    std::memcpy(out_index + 4 * i, &index, 4);
    std::memcpy(out_bits + 4 * i, &bits, 4);
  }
  TERSE_CHECK(worst < non_finite_key, errc::non_finite,
              std::string(codec) + ": the input holds NaN or Inf; sparsifiers code finite values only");
}

/// Sampled values for the top-k threshold: whole blocks of `sample_block`
/// neighbours (a cache line each, so the sample costs few memory round
/// trips), one block per stride, jittered inside it.
inline constexpr std::size_t sample_block = 16;

inline std::size_t strided_sample_blocks(std::size_t n, std::size_t k) noexcept
{
  // Aim for ~384 sampled values above the cut (count error ~5%), with
  // 256 .. n / 128 blocks (at most 1/8 of the input).
  const double wanted = 384.0 * static_cast<double>(n) / static_cast<double>(k) / sample_block;
  const double upper = std::max(static_cast<double>(n / 128), 256.0);
  return static_cast<std::size_t>(std::clamp(wanted, 256.0, upper));
}

/// Where sample block b starts when blocks are `stride` apart (stride >= 2
/// sample_block): jittered inside its stride, aligned to sample_block.
inline std::size_t sample_block_start(std::size_t b, std::size_t stride) noexcept
{
  return (b * stride + sample_jitter(static_cast<std::uint32_t>(b)) % (stride - sample_block)) & ~(sample_block - 1);
}

/// Exact top-k of the values behind `source` (1 <= k < n): writes k
/// (index, value) pairs in index order and returns K, the k-th largest key
/// (the lowest selected magnitude). Raises errc::non_finite on NaN/Inf.
template <class Source>
std::uint32_t select_top_k(const Source& source, std::size_t n, std::size_t k, sparse_workspace& ws,
                           std::byte* out_index, std::byte* out_bits, const char* codec)
{
  if (n <= small_selection) {
    source.materialize(n);
    return select_exact_small(source.values(), n, k, ws, out_index, out_bits, codec);
  }
  // 1. the sample and two thresholds from it: a first one with a margin and
  //    a much lower one in case the first lets fewer than k through.
  const std::size_t blocks = strided_sample_blocks(n, k);  // n > small_selection, so stride >= 64
  const std::size_t stride = n / blocks;
  const std::size_t m = blocks * sample_block;
  if (ws.sample.size() < m) {
    ws.sample.resize(m);
  }
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t start = sample_block_start(b, stride);
    for (std::size_t l = 0; l < sample_block; ++l) {
      ws.sample[b * sample_block + l] = magnitude_key(source.at(start + l));
    }
  }
  const double expected = static_cast<double>(k) * static_cast<double>(m) / static_cast<double>(n);
  const auto rank_for = [&](double sigmas, double extra) {
    const double r = std::ceil(expected + sigmas * std::sqrt(expected) + extra);
    return static_cast<std::size_t>(std::clamp(r, 1.0, static_cast<double>(m)));
  };
  const std::size_t first_rank = rank_for(4.0, 16.0);
  const std::size_t second_rank = std::min(m, 4 * first_rank + 64);
  std::nth_element(ws.sample.begin(), ws.sample.begin() + static_cast<std::ptrdiff_t>(first_rank - 1),
                   ws.sample.begin() + static_cast<std::ptrdiff_t>(m), std::greater<>{});
  const auto usable = [](std::uint32_t key) { return std::clamp<std::uint32_t>(key, 1u, non_finite_key); };
  const std::uint32_t first_key = usable(ws.sample[first_rank - 1]);

  // 2. the pass over the input.
  ws.count = 0;
  source.first_pass(ws, n, first_key);
  std::uint32_t threshold = first_key;
  if (ws.count < k && threshold > 1) {
    // The sample overestimated the cut: a lower threshold from deeper in the
    // sample, then any nonzero.
    std::uint32_t deeper = 1;
    if (second_rank > first_rank) {
      std::nth_element(ws.sample.begin() + static_cast<std::ptrdiff_t>(first_rank),
                       ws.sample.begin() + static_cast<std::ptrdiff_t>(second_rank - 1),
                       ws.sample.begin() + static_cast<std::ptrdiff_t>(m), std::greater<>{});
      deeper = usable(ws.sample[second_rank - 1]);
    }
    for (std::uint32_t lower : {deeper, 1u}) {
      if (lower < threshold && ws.count < k) {
        threshold = lower;
        ws.count = 0;
        filter_into(ws, source.values(), n, threshold);
      }
    }
  }
  check_candidates_finite(ws, codec);
  if (ws.count < k) {  // fewer than k nonzeros: zeros complete the selection
    emit_with_zero_fill(ws, source.values(), k, out_index, out_bits);
    return 0;
  }
  // 3. and 4. the exact cut among the candidates.
  const selection_cut cut = cut_candidates(ws, k);
  emit_cut(ws, cut, k, out_index, out_bits);
  return cut.key;
}

}  // namespace terse::detail

#pragma once
/// @file
/// Random-k's index sets: k distinct indices of [0, n), uniformly random
/// among all k-subsets, sorted ascending, drawn from ctx.shared_stream() so
/// that every rank draws the same set. Host only: a device codec uploads
/// the host's set, so both backends use the very same indices.
///
/// Algorithm: Floyd's sampler (Bentley & Floyd, "Programming Pearls: A
/// sample of brilliance", CACM 1987): for j = n-k .. n-1 draw t uniform in
/// [0, j] and insert t, or j when t is already in. `randomk_sample` replays
/// it with a radix sort and a k-bit map instead of a hash set (in-order
/// memory access, sorted output): O(k) time and memory, never O(n). Each
/// (seed, step, bucket) keeps its set in a small cache, so encode and
/// decode of one step sample once, and the buffers are reused: no
/// allocation after warm-up.

#include <terse/compress/detail/randomk_math.hpp>
#include <terse/core/philox.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace terse::detail {

/// Floyd's sampler with a hash set, into `out` (k values, unsorted). O(k)
/// time, but one cache miss per draw: the fallback for sizes whose
/// (value, draw number) pairs do not fit 64 bits.
inline void randomk_floyd_hashed(const random_stream& stream, std::size_t n, std::size_t k,
                                 std::vector<std::uint64_t>& table, std::uint64_t* out)
{
  constexpr std::uint64_t empty = ~std::uint64_t{0};  // never an index: indices are < n <= 2^64 - 1
  const std::size_t slots = std::bit_ceil(std::max<std::size_t>(16, 2 * k));
  const int shift = 64 - std::countr_zero(slots);
  table.assign(slots, empty);  // no allocation once capacity suffices
  const std::uint64_t mask = slots - 1;
  // Inserts x; false when it was already there.
  const auto insert = [&](std::uint64_t x) {
    std::uint64_t at = (x * 0x9E3779B97F4A7C15ull) >> shift;
    while (true) {
      if (table[at] == empty) {
        table[at] = x;
        return true;
      }
      if (table[at] == x) {
        return false;
      }
      at = (at + 1) & mask;
    }
  };
  for (std::size_t m = 0; m < k; ++m) {
    const std::uint64_t j = n - k + m;
    const std::uint64_t t = randomk_draw(stream, m, j + 1);
    if (insert(t)) {
      out[m] = t;
    } else {
      insert(j);  // j was never drawn before: only earlier j' < j were
      out[m] = j;
    }
  }
}

/// Sorts `keys` stably by their bits [low, low + bits): LSD radix with
/// 11-bit digits (std::stable_sort when there are few). `scratch` holds as
/// many keys.
inline void randomk_radix_sort(std::uint64_t* keys, std::size_t count, int low, int bits,
                               std::vector<std::uint64_t>& scratch)
{
  if (count < 1024) {
    const std::uint64_t mask = bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
    std::stable_sort(keys, keys + count,
                     [&](std::uint64_t a, std::uint64_t b) { return ((a >> low) & mask) < ((b >> low) & mask); });
    return;
  }
  constexpr int digit = 11;
  constexpr std::size_t radix = std::size_t{1} << digit;
  scratch.resize(count);
  std::uint64_t* from = keys;
  std::uint64_t* to = scratch.data();
  std::size_t bucket[radix];
  for (int shift = low; shift < low + bits; shift += digit) {
    std::fill(bucket, bucket + radix, std::size_t{0});
    for (std::size_t i = 0; i < count; ++i) {
      ++bucket[(from[i] >> shift) & (radix - 1)];
    }
    std::size_t sum = 0;
    for (std::size_t d = 0; d < radix; ++d) {
      const std::size_t c = bucket[d];
      bucket[d] = sum;
      sum += c;
    }
    for (std::size_t i = 0; i < count; ++i) {
      to[bucket[(from[i] >> shift) & (radix - 1)]++] = from[i];
    }
    std::swap(from, to);
  }
  if (from != keys) {
    std::copy(from, from + count, keys);
  }
}

/// Reusable buffers of the sampler (all O(k)).
struct randomk_scratch {
  std::vector<std::uint64_t> draws;
  std::vector<std::uint64_t> keys;
  std::vector<std::uint64_t> sort;
  std::vector<std::uint8_t> collided;
  std::vector<std::uint64_t> top;
};

/// Floyd's k-subset of [0, n) for `stream`, sorted ascending into `out`.
///
/// Floyd's loop (m = 0 .. k-1, j = n-k+m, t_m uniform in [0, j]: insert t_m,
/// or j when t_m is already in) is replayed without a hash set, so memory is
/// touched in order rather than once at random per draw:
/// - below n-k only draws t_m land (every j is >= n-k), and t_m goes in
///   exactly when it is the first draw of its value. A stable radix sort of
///   the (t_m, m) pairs lists those values in order and marks every repeat
///   m as "collided" (Floyd inserts j_m for it instead).
/// - [n-k, n) is replayed in the order of m over a bitmap of k bits: a draw
///   t_m there goes in unless its bit is set, in which case j_m does, and a
///   collided m from below inserts j_m (bit m).
/// The result is Floyd's set exactly (the tests compare it with a
/// std::set replay), in O(k) time and memory.
inline void randomk_sample(const random_stream& stream, std::size_t n, std::size_t k, randomk_scratch& s,
                           std::uint64_t* out)
{
  if (k == 0) {
    return;
  }
  const int value_bits = std::bit_width(static_cast<std::uint64_t>(n - 1));
  const int draw_bits = std::bit_width(static_cast<std::uint64_t>(k - 1));
  if (value_bits + draw_bits > 64) {
    randomk_floyd_hashed(stream, n, k, s.keys, out);
    randomk_radix_sort(out, k, 0, value_bits, s.sort);
    return;
  }
  const std::uint64_t low_end = n - k;  // [0, low_end) holds draws only
  s.draws.resize(k + 1);
  s.keys.resize(k);
  std::uint64_t* draws = s.draws.data();
  std::uint64_t* keys = s.keys.data();
  // randomk_draw, one Philox block per two draws (a branch-free loop the
  // compiler vectorises; an odd k computes one draw too many, unused).
  for (std::size_t b = 0; b < (k + 1) / 2; ++b) {
    const philox_counter c = stream.block(b);
    draws[2 * b] = mulhi64(c.word[0] | (std::uint64_t{c.word[1]} << 32), low_end + 2 * b + 1);
    draws[2 * b + 1] = mulhi64(c.word[2] | (std::uint64_t{c.word[3]} << 32), low_end + 2 * b + 2);
  }
  std::size_t low = 0;
  for (std::size_t m = 0; m < k; ++m) {
    keys[low] = (draws[m] << draw_bits) | m;
    low += draws[m] < low_end ? 1 : 0;
  }
  randomk_radix_sort(keys, low, draw_bits, value_bits, s.sort);
  s.collided.assign(k, 0);
  const std::uint64_t m_mask = (std::uint64_t{1} << draw_bits) - 1;
  std::size_t written = 0;
  std::uint64_t previous = ~std::uint64_t{0};
  for (std::size_t i = 0; i < low; ++i) {
    const std::uint64_t t = keys[i] >> draw_bits;
    if (t == previous) {
      s.collided[keys[i] & m_mask] = 1;
    } else {
      out[written++] = t;
      previous = t;
    }
  }
  // [n-k, n): bit b stands for n-k+b; j_m is bit m.
  s.top.assign((k + 63) / 64, 0);
  std::uint64_t* top = s.top.data();
  const auto has = [top](std::uint64_t b) { return ((top[b / 64] >> (b % 64)) & 1u) != 0; };
  const auto put = [top](std::uint64_t b) { top[b / 64] |= std::uint64_t{1} << (b % 64); };
  for (std::size_t m = 0; m < k; ++m) {
    const std::uint64_t t = draws[m];
    if (t >= low_end) {
      put(has(t - low_end) ? m : t - low_end);
    } else if (s.collided[m] != 0) {
      put(m);
    }
  }
  for (std::size_t w = 0; w < s.top.size(); ++w) {
    for (std::uint64_t bitsw = top[w]; bitsw != 0; bitsw &= bitsw - 1) {
      out[written++] = low_end + 64 * w + static_cast<std::uint64_t>(std::countr_zero(bitsw));
    }
  }
}

/// The index sets of recent (seed, step, bucket, n, k), one per bucket id.
class randomk_index_cache {
 public:
  /// Most bucket ids kept at once; beyond that the least recently used
  /// set is reused.
  static constexpr std::size_t max_sets = 256;

  /// The sorted index set for `ctx` (its seed, step and bucket; offset and
  /// rank play no part) over n values with k chosen.
  host_span<const std::uint64_t> indices(const codec_context& ctx, std::size_t n, std::size_t k)
  {
    ++clock_;
    set* slot = nullptr;
    for (set& s : sets_) {
      if (s.bucket == ctx.bucket) {
        slot = &s;
        break;
      }
    }
    if (slot == nullptr) {
      if (sets_.size() < max_sets) {
        slot = &sets_.emplace_back();
      } else {
        slot = &*std::min_element(sets_.begin(), sets_.end(),
                                  [](const set& a, const set& b) { return a.last_used < b.last_used; });
      }
      slot->valid = false;
      slot->bucket = ctx.bucket;
    }
    slot->last_used = clock_;
    if (!(slot->valid && slot->seed == ctx.seed && slot->step == ctx.step && slot->n == n && slot->k == k)) {
      slot->indices.resize(k);
      const random_stream stream = ctx.shared_stream();
      randomk_sample(stream, n, k, scratch_, slot->indices.data());
      slot->seed = ctx.seed;
      slot->step = ctx.step;
      slot->n = n;
      slot->k = k;
      slot->valid = true;
    }
    return host_span<const std::uint64_t>(slot->indices.data(), k);
  }

 private:
  struct set {
    bool valid = false;
    std::uint32_t bucket = 0;
    std::uint64_t seed = 0;
    std::uint64_t step = 0;
    std::size_t n = 0;
    std::size_t k = 0;
    std::uint64_t last_used = 0;
    std::vector<std::uint64_t> indices;
  };
  std::vector<set> sets_;
  randomk_scratch scratch_;
  std::uint64_t clock_ = 0;
};

}  // namespace terse::detail

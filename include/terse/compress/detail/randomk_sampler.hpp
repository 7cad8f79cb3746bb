#pragma once
/// @file
/// Random-k's index sets: k distinct indices of [0, n), uniformly random
/// among all k-subsets, sorted ascending, drawn from ctx.shared_stream() so
/// that every rank draws the same set. Host only: a device codec uploads
/// the host's set, so both backends use the very same indices.
///
/// Algorithm: Floyd's sampler (Bentley & Floyd, "Programming Pearls: A
/// sample of brilliance", CACM 1987): for j = n-k .. n-1 draw t uniform in
/// [0, j] and insert t, or j when t is already in. It makes k draws and k
/// insertions into an open-addressing hash set of 2k..4k slots, then an LSD
/// radix sort (11-bit digits over the bits of n-1) orders the set: O(k)
/// time and memory, never O(n). Each (seed, step, bucket) keeps its set in
/// a small cache, so encode and decode of one step sample once, and the
/// buffers are reused: no allocation after warm-up.

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

/// Floyd's sampler into `out` (k values, unsorted), using `table` as the
/// hash set. O(k).
inline void randomk_floyd(const random_stream& stream, std::size_t n, std::size_t k, std::vector<std::uint64_t>& table,
                          std::uint64_t* out)
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

/// Sorts `values` (all < n) ascending: LSD radix with 11-bit digits, or
/// std::sort when there are few. `scratch` holds as many values.
inline void randomk_sort(std::uint64_t* values, std::size_t k, std::size_t n, std::vector<std::uint64_t>& scratch)
{
  if (k < 1024) {
    std::sort(values, values + k);
    return;
  }
  constexpr int digit = 11;
  constexpr std::size_t radix = std::size_t{1} << digit;
  const int bits = std::bit_width(static_cast<std::uint64_t>(n - 1));
  scratch.resize(k);
  std::uint64_t* from = values;
  std::uint64_t* to = scratch.data();
  std::size_t count[radix];
  for (int shift = 0; shift < bits; shift += digit) {
    std::fill(count, count + radix, std::size_t{0});
    for (std::size_t i = 0; i < k; ++i) {
      ++count[(from[i] >> shift) & (radix - 1)];
    }
    std::size_t sum = 0;
    for (std::size_t d = 0; d < radix; ++d) {
      const std::size_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (std::size_t i = 0; i < k; ++i) {
      to[count[(from[i] >> shift) & (radix - 1)]++] = from[i];
    }
    std::swap(from, to);
  }
  if (from != values) {
    std::copy(from, from + k, values);
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
      randomk_floyd(stream, n, k, table_, slot->indices.data());
      randomk_sort(slot->indices.data(), k, n, scratch_);
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
  std::vector<std::uint64_t> table_;
  std::vector<std::uint64_t> scratch_;
  std::uint64_t clock_ = 0;
};

}  // namespace terse::detail

#pragma once
/// @file
/// Draws the random maximal matching of one round: a Philox-driven
/// Fisher-Yates shuffle of the ranks, paired off in order. Every perfect
/// matching (or, for odd W, every choice of the rank left out and matching
/// of the rest) comes from equally many shuffles, so the draw is uniform.

#include <terse/core/philox.hpp>
#include <terse/topology/detail/graph_spec.hpp>

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace terse::topology::detail {

/// A stream of 32-bit words, a pure function of (seed, epoch, round).
class round_stream {
 public:
  round_stream(std::uint64_t seed, std::uint64_t epoch, std::uint64_t round) noexcept
      : key_(seed ^ mix64(epoch)), round_(round)
  {
  }

  std::uint32_t next() noexcept
  {
    if ((index_ & 3u) == 0) {
      block_ = philox4x32_10(
          philox_counter{{static_cast<std::uint32_t>(index_ >> 2), static_cast<std::uint32_t>(index_ >> 34),
                          static_cast<std::uint32_t>(round_), static_cast<std::uint32_t>(round_ >> 32)}},
          philox_key{{static_cast<std::uint32_t>(key_), static_cast<std::uint32_t>(key_ >> 32)}});
    }
    return block_.word[index_++ & 3u];
  }

  /// Uniform in [0, bound), unbiased (Lemire's multiply-and-reject).
  std::uint32_t below(std::uint32_t bound) noexcept
  {
    std::uint64_t product = static_cast<std::uint64_t>(next()) * bound;
    auto low = static_cast<std::uint32_t>(product);
    if (low < bound) {
      const std::uint32_t threshold = static_cast<std::uint32_t>(-bound) % bound;
      while (low < threshold) {
        product = static_cast<std::uint64_t>(next()) * bound;
        low = static_cast<std::uint32_t>(product);
      }
    }
    return static_cast<std::uint32_t>(product >> 32);
  }

 private:
  std::uint64_t key_;
  std::uint64_t round_;
  std::uint64_t index_ = 0;
  philox_counter block_{};
};

/// Fills `order` with the round's shuffle: order[2i] and order[2i+1] are
/// matched; for odd W the last rank sits the round out.
inline void draw_matching_order(int world, std::uint64_t seed, std::uint64_t epoch, std::uint64_t round,
                                std::vector<int>& order)
{
  order.resize(static_cast<std::size_t>(world));
  std::iota(order.begin(), order.end(), 0);
  round_stream stream(seed, epoch, round);
  for (std::size_t i = order.size(); i-- > 1;) {
    const std::size_t j = stream.below(static_cast<std::uint32_t>(i + 1));
    std::swap(order[i], order[j]);
  }
}

/// The reusable per-thread buffer for round_for, which must not allocate
/// once warm.
inline std::vector<int>& matching_scratch()
{
  thread_local std::vector<int> order;
  return order;
}

}  // namespace terse::topology::detail

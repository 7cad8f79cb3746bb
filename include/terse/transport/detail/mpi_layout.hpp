#pragma once
/// @file
/// How a buffer is split into one block per rank: evenly for allreduce and
/// broadcast, uniformly for reduce_scatter and allgather, by counts for
/// allgatherv.

#include <terse/core/span.hpp>
#include <terse/transport/detail/partition.hpp>

#include <cstddef>
#include <vector>

namespace terse::detail::mpi {

/// Offsets of W consecutive blocks. The offsets vector is sized once for
/// the world, so re-laying out a buffer never allocates.
class block_layout {
 public:
  explicit block_layout(int world) : offsets_(static_cast<std::size_t>(world) + 1, 0) {}

  /// n elements over W blocks by terse's one partition rule
  /// (detail/partition.hpp): the first n % W blocks get one extra element.
  void even(std::size_t n) noexcept
  {
    const auto world = static_cast<int>(blocks());
    for (int j = 0; j < world; ++j) {
      offsets_[static_cast<std::size_t>(j)] = block_of(n, world, j).begin;
    }
    offsets_.back() = n;
  }

  /// W blocks of `block` elements each.
  void uniform(std::size_t block) noexcept
  {
    for (std::size_t j = 0; j < offsets_.size(); ++j) {
      offsets_[j] = j * block;
    }
  }

  /// Block j holds counts[j] elements; counts.size() must equal W.
  void from_counts(host_span<const std::size_t> counts) noexcept
  {
    offsets_[0] = 0;
    for (std::size_t j = 0; j < counts.size(); ++j) {
      offsets_[j + 1] = offsets_[j] + counts[j];
    }
  }

  std::size_t offset(int block) const noexcept { return offsets_[static_cast<std::size_t>(block)]; }
  std::size_t length(int block) const noexcept
  {
    return offsets_[static_cast<std::size_t>(block) + 1] - offsets_[static_cast<std::size_t>(block)];
  }
  std::size_t total() const noexcept { return offsets_.back(); }
  std::size_t blocks() const noexcept { return offsets_.size() - 1; }

 private:
  std::vector<std::size_t> offsets_;
};

}  // namespace terse::detail::mpi

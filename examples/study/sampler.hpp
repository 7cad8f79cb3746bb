#pragma once
// A worker's minibatches: its shard in a Philox-shuffled order, reshuffled
// (with the next epoch's draws) whenever fewer than a batch remain.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace study {

class sampler {
 public:
  sampler(std::vector<std::size_t> shard, std::size_t batch, std::uint64_t seed, int rank);

  /// The next `batch` example indices.
  std::span<const std::size_t> next();

 private:
  void reshuffle();

  std::vector<std::size_t> order_;
  std::size_t batch_;
  std::size_t position_ = 0;
  std::uint64_t seed_;
  std::uint32_t rank_;
  std::uint32_t epoch_ = 0;
};

}  // namespace study

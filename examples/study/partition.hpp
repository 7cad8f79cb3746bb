#pragma once
// Splits the training set over W workers: IID (a shuffled, even split) or
// with label skew (each class spread over the workers in Dirichlet(alpha)
// proportions, as in Hsu, Qi, Brown 2019; alpha = 0.1 leaves most workers
// with one or two classes).

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fashion_mnist.hpp"

namespace study {

enum class partition_kind { iid, dirichlet };

constexpr std::string_view to_string(partition_kind kind) noexcept
{
  return kind == partition_kind::iid ? "iid" : "non-iid";
}

/// Each worker's example indices into the training set.
using shards = std::vector<std::vector<std::size_t>>;

/// IID: a Philox permutation cut into W nearly equal shards.
shards partition_iid(const dataset& train, int workers, std::uint64_t seed);

/// Label skew: for every class, proportions p ~ Dirichlet(alpha, ..., alpha)
/// over the workers split that class's (shuffled) examples. Draws again
/// (deterministically) until every shard holds at least `min_shard`
/// examples; throws std::runtime_error if that cannot be met.
shards partition_dirichlet(const dataset& train, int workers, double alpha, std::size_t min_shard, std::uint64_t seed);

/// How many examples of each class every shard holds (for the report).
std::vector<std::vector<std::size_t>> class_counts(const dataset& train, const shards& parts);

}  // namespace study

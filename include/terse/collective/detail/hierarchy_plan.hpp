#pragma once
/// @file
/// What a hierarchical collective agrees on when it is built: the groups
/// (a split of the world), how many there are, how many shards a group's
/// buffer is cut into, and the layout of the shard this rank owns.

#include <terse/collective/groups.hpp>
#include <terse/collective/layout.hpp>
#include <terse/core/error.hpp>
#include <terse/core/span.hpp>
#include <terse/core/verbs.hpp>
#include <terse/transport/detail/partition.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace terse::detail {

/// A transport that makes sub-transports.
template <class T>
concept splits = requires(T& t, int colour, int key)
{
  t.split(colour, key);
  t.split_shared();
};

template <class T>
using split_t = decltype(std::declval<T&>().split(0, 0));

/// This rank's group, split off `world` (collective).
template <class Transport>
split_t<Transport> split_group(Transport& world, const groups& how)
{
  if (how.how() == groups::kind::shared_memory) {
    return world.split_shared();
  }
  return world.split(how.colour_of(world.rank(), world.size()), world.rank());
}

struct hierarchy_plan {
  int world = 1;   ///< W
  int groups = 1;  ///< G
  int shards = 1;  ///< S: the smallest group's size
  bool owner = false;
  block_range shard{0, 0};  ///< the elements this rank's shard covers (empty unless owner)
};

/// Counts the groups and finds the smallest (two small allreduces over
/// `world`, collective).
template <class Transport, class Group>
hierarchy_plan plan_hierarchy(Transport& world, Group& group, std::size_t elements)
{
  std::int64_t leaders = group.rank() == 0 ? 1 : 0;
  std::int64_t smallest = group.size();
  world.allreduce(host_span<std::int64_t>(&leaders, 1), reduce_op::sum);
  world.allreduce(host_span<std::int64_t>(&smallest, 1), reduce_op::min);
  hierarchy_plan plan;
  plan.world = world.size();
  plan.groups = static_cast<int>(leaders);
  plan.shards = static_cast<int>(smallest);
  plan.owner = group.rank() < plan.shards;
  if (plan.owner) {
    plan.shard = block_of(elements, plan.shards, group.rank());
  }
  return plan;
}

/// The part of `shape` in `shard`: its tensors clipped to the shard, in
/// buckets no larger than the largest of `shape`, with the same dense_below.
inline layout shard_layout(const layout& shape, block_range shard)
{
  std::vector<std::size_t> pieces;
  std::size_t largest_bucket = 1;
  for (const bucket& b : shape.buckets()) {
    largest_bucket = std::max(largest_bucket, b.count);
  }
  const std::size_t end = shard.begin + shard.count;
  for (const tensor_range& t : shape.tensors()) {
    const std::size_t first = std::max(t.offset, shard.begin);
    const std::size_t last = std::min(t.offset + t.count, end);
    if (first < last) {
      pieces.push_back(last - first);
    }
  }
  if (pieces.empty()) {
    pieces.push_back(0);
  }
  return layout(pieces, largest_bucket, shape.dense_below());
}

}  // namespace terse::detail

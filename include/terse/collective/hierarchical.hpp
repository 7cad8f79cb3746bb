#pragma once
/// @file
/// `terse::hierarchical_allreduce<Compressor, Feedback, Transport>`: the
/// allreduce for clusters of multi-GPU nodes, where links inside a node are
/// fast and links between nodes slow. Ranks form groups (`terse::groups`);
/// a step is
///
/// 1. inside each group, a dense reduce-scatter over the fast links: the
///    buffer is cut into S shards (S = the smallest group's size) and group
///    rank s < S sums shard s of its group;
/// 2. across groups, shard s's owners (one per group) average their sums
///    with the compressed allreduce (any codec, any feedback rule) over the
///    slow links; only owners send bytes between groups;
/// 3. inside each group, the owners' results are allgathered.
///
/// @code
/// terse::hierarchical_allreduce sync(transport, terse::groups::shared_memory(), shape,
///                                    terse::compress::uniform<4>{}, terse::feedback::residual{});
/// sync.average(terse::host_span<float>(grads));   // every rank: the mean over all ranks
/// @endcode
///
/// Groups may differ in size: owners scale their group's sum by G/W (G
/// groups, W ranks) so the average over groups is the mean over ranks, and
/// ranks s >= S of a larger group own no shard. Without a codec the owners
/// sum exactly and divide by W, so integer-valued data gives the flat
/// allreduce's bits.
///
/// A step is a transaction, as the flat allreduce's: a non-finite value or
/// a malformed payload anywhere makes every rank raise the same error, and
/// then no rank's buffer, feedback or codec state has changed. (With S > 1
/// shards a failure may hit one shard's owners only, so owners keep a copy
/// of their feedback and codec state from before the step to put back:
/// one extra pass over their shard's state per step.)
///
/// Needs a transport with `split` and `split_shared` (local, MPI, NCCL and
/// their decorators); it makes two sub-transports: the group, and the
/// owners of one shard index across groups.

#include <terse/collective/allreduce.hpp>
#include <terse/collective/detail/hierarchy_plan.hpp>
#include <terse/collective/detail/policy_arguments.hpp>
#include <terse/collective/detail/state_snapshot.hpp>
#include <terse/collective/groups.hpp>
#include <terse/collective/layout.hpp>
#include <terse/compress/identity.hpp>
#include <terse/core/concept_checks.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/feedback/none.hpp>

#include <cstddef>
#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <type_traits>
#include <utility>
#include <vector>

namespace terse {

template <class Compressor = compress::identity, class Feedback = feedback::none, class Transport = local_transport>
class hierarchical_allreduce {
  static_assert(concepts::check_compressor<Compressor>());
  static_assert(concepts::check_feedback<Feedback>());
  static_assert(detail::splits<Transport>,
                "terse::hierarchical_allreduce needs a transport with split(colour, key) and split_shared()");

 public:
  /// The transport type of the group and of the owners across groups.
  using sub_transport = detail::split_t<Transport>;
  /// The compressed allreduce owners run across groups.
  using cross_allreduce = allreduce<Compressor, Feedback, sub_transport>;
  static constexpr bool compresses = !std::is_same_v<Compressor, compress::identity>;

  /// Collective over `world`: splits it into the groups and the owners'
  /// cross-group sub-transports.
  /// @param world the transport of all ranks, owned by the caller, outliving this object
  /// @param how   the groups
  /// @param shape the tensors and buckets of the buffers passed later
  hierarchical_allreduce(Transport& world, groups how, layout shape, allreduce_options options = {},
                         Compressor compressor = {}, Feedback feedback = {})
      : world_(&world),
        shape_(std::move(shape)),
        options_(options),
        group_(detail::split_group(world, how)),
        plan_(detail::plan_hierarchy(world, group_, shape_.total())),
        cross_(world.split(plan_.owner ? group_.rank() : -1, world.rank()))
  {
    if constexpr (compresses) {
      if (plan_.owner && cross_.size() > 1) {
        cross_sync_.emplace(cross_, detail::shard_layout(shape_, plan_.shard), options_, std::move(compressor),
                            std::move(feedback));
      }
    }
  }

  /// The codec, feedback rule and options in any order, each at most once.
  template <class... Policies>
  requires(sizeof...(Policies) > 0 && detail::policy_arguments<allreduce_options, Policies...>)
      hierarchical_allreduce(Transport& world, groups how, layout shape, Policies&&... policies)
      : hierarchical_allreduce(world, std::move(how), std::move(shape),
                               detail::pick_policy<allreduce_options>(policies...),
                               detail::pick_policy<Compressor>(std::forward<Policies>(policies)...),
                               detail::pick_policy<Feedback>(std::forward<Policies>(policies)...))
  {
  }

  hierarchical_allreduce(const hierarchical_allreduce&) = delete;
  hierarchical_allreduce& operator=(const hierarchical_allreduce&) = delete;

  /// Averages `values` (the whole layout) in place across all ranks. Every
  /// rank holds the same bits afterwards, or every rank raises the same
  /// error and nothing changed.
  void average(host_span<float> values);

  /// After the backward pass: averages the gradients (every step).
  sync_action on_gradients(host_span<float> gradients)
  {
    average(gradients);
    return sync_action::average;
  }

  int rank() const { return world_->rank(); }
  int size() const { return world_->size(); }
  /// How many groups there are (G).
  int group_count() const noexcept { return plan_.groups; }
  /// How many shards each group's buffer is cut into (S, the smallest group's size).
  int shard_count() const noexcept { return plan_.shards; }
  /// True on the ranks that own a shard (group rank < S): they alone talk across groups.
  bool owns_shard() const noexcept { return plan_.owner; }
  /// This rank's group.
  sub_transport& group() noexcept { return group_; }
  /// The owners of this rank's shard index across groups (this rank alone if it owns none).
  sub_transport& cross() noexcept { return cross_; }
  const layout& shape() const noexcept { return shape_; }
  /// Steps completed.
  std::uint64_t step() const noexcept { return steps_; }

  /// Saves this rank's state (the cross-group allreduce's on owners) with a
  /// header naming the world, the groups and the layout.
  void save(std::ostream& out) const;
  /// Restores what save() wrote; a blob from another world, grouping or
  /// layout raises terse::error(errc::io) and changes nothing.
  void load(std::istream& in);

 private:
  void reduce_in_group(host_span<const float> values);
  std::uint64_t reduce_across_groups();
  void share_statuses(std::uint64_t own);
  void gather_in_group(host_span<float> values);
  void exchange_in_group(int tag);

  Transport* world_;
  layout shape_;
  allreduce_options options_;
  sub_transport group_;
  detail::hierarchy_plan plan_;
  sub_transport cross_;
  std::optional<cross_allreduce> cross_sync_;
  std::uint64_t steps_ = 0;

  // Scratch, grown once.
  std::vector<float> contributions_;  ///< the group's contributions to this rank's shard
  std::vector<float> shard_;          ///< this rank's shard: the group's sum, then the mean
  std::vector<std::uint64_t> statuses_;
  std::vector<outgoing<>> sends_;
  std::vector<incoming<>> recvs_;
  detail::snapshot_buffer before_;
};

/// `hierarchical_allreduce sync(t, groups, shape, policies...)` deduces the
/// transport and the policies given.
template <class Transport, class... Policies>
requires detail::policy_arguments<allreduce_options, Policies...> hierarchical_allreduce(Transport&, groups, layout,
                                                                                         Policies&&...)
->hierarchical_allreduce<detail::compressor_of<allreduce_options, Policies...>,
                         detail::feedback_of<allreduce_options, Policies...>, Transport>;

}  // namespace terse

#include <terse/collective/detail/hierarchical_step.inl>

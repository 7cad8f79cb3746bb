#pragma once
/// @file
/// `terse::clustered_gossip<Value, Transport>`: gossip between clusters of
/// ranks (topology::cluster_by_speed groups them by measured speed). A
/// round is
///
/// 1. inside each cluster, an exact allreduce average over a sub-transport
///    (`split(cluster, rank)`);
/// 2. on outer rounds (every `outer_every`-th), the cluster leaders (each
///    cluster's lowest rank) mix the cluster means with the linked leaders,
///    y_c <- A_cc y_c + sum_d (n_d / W) y_d, with A_cc the rest: scaling by
///    n_d / W keeps sum_c n_c y_c, the global mean, whatever the sizes;
/// 3. leaders broadcast the result inside their cluster.
///
/// @code
/// auto clusters = terse::topology::cluster_by_speed(agreed_measurements, 2);
/// terse::clustered_gossip<float, Transport> mix(transport, params.size(), clusters,
///                                              terse::clustered_options{.outer_every = 4});
/// mix.on_parameters(terse::host_span<float>(params));
/// @endcode
///
/// As one W x W matrix an outer round is topology::clustered_graph(...):
/// symmetric and doubly stochastic, connected when the leader graph is, so
/// the ranks reach the global mean at rate graph().rho() per outer round;
/// inner rounds are projections onto the cluster means. With
/// `leader_links::complete` one outer round is the exact global mean.
///
/// A round works on a copy: if any step raises, the caller's values are as
/// they were on that rank (its cluster's members then meet a timeout).

#include <terse/collective/detail/hierarchy_plan.hpp>
#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/verbs.hpp>
#include <terse/topology/planner.hpp>
#include <terse/transport/local.hpp>

#include <cstddef>
#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace terse {

struct clustered_options {
  /// Leaders mix every this many rounds (>= 1); the rounds between average
  /// inside clusters only, so the slow links between clusters carry fewer
  /// exchanges.
  std::uint64_t outer_every = 1;
  topology::leader_links links = topology::leader_links::complete;
};

namespace detail {
inline constexpr int cluster_tag = 1010;
}

template <class Value = double, class Transport = local_transport>
class clustered_gossip {
  static_assert(std::is_same_v<Value, float> || std::is_same_v<Value, double>,
                "terse::clustered_gossip: values are float or double");
  static_assert(detail::splits<Transport>, "terse::clustered_gossip needs a transport with split(colour, key)");

 public:
  using value_type = Value;
  using sub_transport = detail::split_t<Transport>;

  /// A collective (it splits `world`). Raises invalid_argument when the
  /// clustering is not over transport.size() ranks or outer_every is 0.
  clustered_gossip(Transport& world, std::size_t count, topology::clustering clusters, clustered_options options = {})
      : world_(&world),
        count_(count),
        clusters_(std::move(clusters)),
        options_(options),
        equivalent_(checked_graph(world, clusters_, options_)),
        sub_(world.split(clusters_.cluster_of[static_cast<std::size_t>(world.rank())], world.rank()))
  {
    const int mine = cluster();
    leader_ = clusters_.leaders[static_cast<std::size_t>(mine)] == world.rank();
    if (leader_) {
      const double w = world.size();
      self_weight_ = 1.0;
      for (int d = 0; d < clusters_.count(); ++d) {
        if (linked(mine, d)) {
          peers_.push_back(clusters_.leaders[static_cast<std::size_t>(d)]);
          peer_weights_.push_back(clusters_.sizes[static_cast<std::size_t>(d)] / w);
          self_weight_ -= peer_weights_.back();
        }
      }
      received_.resize(peers_.size() * count_);
    }
    scratch_.resize(count_);
  }

  /// One round now (a collective over the world).
  void mix(host_span<Value> values)
  {
    TERSE_EXPECTS(values.size() == count_, "the buffer has " + std::to_string(values.size()) +
                                               " elements, the collective " + std::to_string(count_));
    std::copy(values.begin(), values.end(), scratch_.begin());
    const host_span<Value> work(scratch_.data(), count_);
    const bool alone = sub_.size() == 1;
    if (!alone) {
      sub_.allreduce(work, reduce_op::average);
    }
    if (rounds_ % options_.outer_every == 0 && clusters_.count() > 1) {
      if (leader_) {
        mix_leaders();
      }
      if (!alone) {
        sub_.broadcast(work, 0);
      }
    }
    std::copy(scratch_.begin(), scratch_.end(), values.begin());
    ++rounds_;
  }
  /// After the optimizer step: one round.
  sync_action on_parameters(host_span<Value> values)
  {
    mix(values);
    return sync_action::average;
  }

  std::uint64_t rounds() const noexcept { return rounds_; }
  std::size_t count() const noexcept { return count_; }
  int cluster() const noexcept { return clusters_.cluster_of[static_cast<std::size_t>(world_->rank())]; }
  bool leader() const noexcept { return leader_; }
  const topology::clustering& clusters() const noexcept { return clusters_; }
  /// An outer round as one W x W mixing matrix (topology::clustered_graph).
  const topology::graph& graph() const noexcept { return equivalent_; }
  Transport& transport() const noexcept { return *world_; }
  /// The cluster's sub-transport (decorators on it count its traffic apart).
  sub_transport& cluster_transport() noexcept { return sub_; }

  void save(std::ostream& out) const
  {
    state_writer w(out);
    w.section("terse::clustered_gossip");
    w.value(static_cast<std::int32_t>(world_->size()));
    w.value(static_cast<std::int32_t>(world_->rank()));
    w.value(rounds_);
  }
  /// All or nothing: errc::io for another world or rank or a short blob.
  void load(std::istream& in)
  {
    state_reader r(in);
    r.section("terse::clustered_gossip");
    TERSE_CHECK(r.value<std::int32_t>() == world_->size(), errc::io, "clustered gossip state: another world");
    TERSE_CHECK(r.value<std::int32_t>() == world_->rank(), errc::io, "clustered gossip state: another rank");
    rounds_ = r.value<std::uint64_t>();
  }

 private:
  static topology::graph checked_graph(Transport& world, const topology::clustering& c, const clustered_options& o)
  {
    TERSE_EXPECTS(c.world() == world.size(), "the clustering has " + std::to_string(c.world()) +
                                                 " ranks and the transport " + std::to_string(world.size()));
    TERSE_EXPECTS(o.outer_every >= 1, "clustered gossip: outer_every must be at least 1");
    return topology::clustered_graph(c, o.links);
  }

  bool linked(int a, int b) const noexcept
  {
    const int k = clusters_.count();
    if (a == b) {
      return false;
    }
    return options_.links == topology::leader_links::complete || k <= 3 || (a + 1) % k == b || (b + 1) % k == a;
  }

  // y_c <- A_cc y_c + sum_d (n_d / W) y_d over the linked leaders, in double.
  void mix_leaders()
  {
    sends_.clear();
    recvs_.clear();
    const auto bytes = count_ * sizeof(Value);
    for (std::size_t k = 0; k < peers_.size(); ++k) {
      sends_.push_back(outgoing<>{
          peers_[k], host_span<const std::byte>(reinterpret_cast<const std::byte*>(scratch_.data()), bytes)});
      recvs_.push_back(incoming<>{
          peers_[k], host_span<std::byte>(reinterpret_cast<std::byte*>(received_.data() + k * count_), bytes)});
    }
    const exchange_id id =
        world_->start_exchange(host_span<const outgoing<>>(sends_.data(), sends_.size()),
                               host_span<const incoming<>>(recvs_.data(), recvs_.size()), detail::cluster_tag);
    world_->wait(id);
    for (std::size_t i = 0; i < count_; ++i) {
      double y = self_weight_ * static_cast<double>(scratch_[i]);
      for (std::size_t k = 0; k < peers_.size(); ++k) {
        y += peer_weights_[k] * static_cast<double>(received_[k * count_ + i]);
      }
      scratch_[i] = static_cast<Value>(y);
    }
  }

  Transport* world_;
  std::size_t count_;
  topology::clustering clusters_;
  clustered_options options_;
  topology::graph equivalent_;
  sub_transport sub_;
  bool leader_ = false;
  std::vector<int> peers_;            // linked leaders (leaders only)
  std::vector<double> peer_weights_;  // n_d / W
  double self_weight_ = 1.0;          // A_cc
  std::vector<Value> scratch_, received_;
  std::vector<outgoing<>> sends_;
  std::vector<incoming<>> recvs_;
  std::uint64_t rounds_ = 0;
};

template <class Transport>
clustered_gossip(Transport&, std::size_t, topology::clustering) -> clustered_gossip<double, Transport>;
template <class Transport>
clustered_gossip(Transport&, std::size_t, topology::clustering, clustered_options)
    -> clustered_gossip<double, Transport>;

}  // namespace terse

#pragma once
// The study's collectives over re-planned topologies and clusters: a
// terse::gossip whose graph a terse::replanner re-plans from the ranks'
// measured links, and a terse::clustered_gossip over clusters found by
// speed. On the study's modelled network a rank "measures" the bandwidth of
// the links it used by reading the model (the bandwidth an ideal meter
// would report); every rank declares the same step time, since the
// workers' compute is modelled as equal.

#include <terse/collective/clustered_gossip.hpp>
#include <terse/collective/gossip.hpp>
#include <terse/collective/replanning.hpp>
#include <terse/topology/graph.hpp>
#include <terse/topology/planner.hpp>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace study {

/// D-PSGD (or SGP) on `initial`, re-planned after the first round and then
/// every `every` rounds.
template <class Mixer>
struct replanned_policies {
  terse::topology::graph initial;
  Mixer mixer;
  std::uint64_t every = 100;
  terse::replan_options options{};
};

/// Clusters of similar speed: exact averaging inside, leaders mixing every
/// options.outer_every rounds.
struct clustered_policies {
  int clusters = 2;
  terse::clustered_options options{};
};

/// The bandwidths of the links this rank used in round 0 of `g`, from the
/// modelled network.
template <class Network>
std::vector<double> measured_links(const Network& network, const terse::topology::graph& g)
{
  const int world = network.size();
  const int rank = network.rank();
  std::vector<double> links(static_cast<std::size_t>(world), 0.0);
  terse::topology::rank_round mine;
  g.round_for(rank, 0, mine);
  for (const terse::topology::link& l : mine.sends) {
    links[static_cast<std::size_t>(l.peer)] = network.model().link_bandwidth(rank, l.peer, world);
  }
  return links;
}

inline constexpr double declared_step_seconds = 1.0;

/// A terse::gossip plus the replanner that re-plans its graph.
template <class Mixer, class Transport>
class replanned_gossip {
 public:
  replanned_gossip(Transport& network, std::size_t count, std::uint64_t seed, replanned_policies<Mixer> made)
      : mix_(network, count, made.initial, terse::gossip_options{.seed = seed, .check_plan = false},
             std::move(made.mixer)),
        planner_(made.initial, network.rank(), made.options),
        every_(made.every)
  {
  }

  terse::sync_action on_parameters(terse::host_span<float> parameters)
  {
    const terse::sync_action action = mix_.on_parameters(parameters);
    if (mix_.rounds() == 1 || (every_ > 0 && mix_.rounds() % every_ == 0)) {
      planner_.declare_step_seconds(declared_step_seconds);
      const std::vector<double> links = measured_links(mix_.transport(), mix_.graph());
      for (std::size_t peer = 0; peer < links.size(); ++peer) {
        if (links[peer] > 0) {
          planner_.declare_link(static_cast<int>(peer), links[peer]);
        }
      }
      terse::replan(mix_, planner_);
    }
    return action;
  }
  std::uint64_t rounds() const noexcept { return mix_.rounds(); }
  const terse::replanner& planner() const noexcept { return planner_; }

 private:
  terse::gossip<float, Mixer, Transport> mix_;
  terse::replanner planner_;
  std::uint64_t every_;
};

/// Every rank declares the links it used on a ring (a warm-up round's
/// measurements), agrees on them, and clusters by speed.
template <class Transport>
terse::clustered_gossip<float, Transport> make_clustered(Transport& network, std::size_t count,
                                                         const clustered_policies& made)
{
  const terse::topology::graph warm_up = terse::topology::ring(network.size());
  const terse::topology::measurements agreed =
      terse::exchange_measurements(network, declared_step_seconds, measured_links(network, warm_up));
  return terse::clustered_gossip<float, Transport>(
      network, count, terse::topology::cluster_by_speed(agreed, made.clusters), made.options);
}

}  // namespace study

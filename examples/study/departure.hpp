#pragma once
// A worker that leaves mid-training (the *-disconnect rows): its thread
// stops, and the survivors' gossip reroutes around it
// (terse::failure_policy::reroute over terse::failure_scope::peer,
// docs/gossip.md "Failures"). What the trainer needs for that: when who
// leaves, the rerouting gossip, a study transport that reports failed
// peers, and the evaluation's sums over the survivors alone.

#include <terse/collective/gossip.hpp>
#include <terse/collective/layout.hpp>
#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/span.hpp>
#include <terse/topology/graph.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "configuration.hpp"

namespace study {

/// Who leaves and when: rank `rank` stops after `after_step` steps (its
/// thread's body returns); -1: nobody leaves. `gone` is set once its death
/// is known to the transport, and the survivors wait for it before their
/// next step, so every run sees the failure at the same round.
struct departure {
  int rank = -1;
  std::uint64_t after_step = 0;
  std::atomic<bool> gone{false};
};

/// Reads the knobs `leave_rank` and `leave_at` (a fraction of the steps)
/// into `out`; leaves it empty for a configuration without them. Raises
/// errc::invalid_argument for a rank outside the world, a departure before
/// the first step or after the last, or --transport mpi (rerouting needs
/// the local transport's failure_scope::peer).
void schedule_departure(const configuration& config, const run_context& ctx, departure& out);

/// A gossip_policies whose survivors go on without a failed peer
/// (terse::failure_policy::reroute), agreeing on who is alive every
/// `membership_every` rounds.
template <class Mixer>
struct rerouted_policies {
  terse::topology::graph graph;
  Mixer mixer;
  std::uint64_t membership_every = 8;
};

/// A gossip that reroutes around failed peers (the transport must be built
/// with terse::failure_scope::peer).
template <class Transport, class Mixer>
auto make_collective(Transport& network, const terse::layout& shape, const run_context& ctx,
                     rerouted_policies<Mixer> made)
{
  return terse::gossip<float, Mixer, Transport>(network, shape.total(), std::move(made.graph),
                                                terse::gossip_options{.seed = ctx.seed,
                                                                      .check_plan = false,
                                                                      .on_peer_failure = terse::failure_policy::reroute,
                                                                      .membership_every = made.membership_every},
                                                std::move(made.mixer));
}

/// Waits until `leaving.gone`; raises errc::timeout past the transport's
/// deadline, as a wait on any peer would (a worker that failed earlier
/// never leaves on schedule).
void wait_until_gone(const departure& leaving);

/// The ranks but `rank`, ascending.
std::vector<int> survivors_of(int workers, int rank);

/// A tag of its own for the survivors' evaluation messages.
inline constexpr int survivors_tag = 0x57d7;

/// Sums `values` over `members` (ascending ranks, this one among them) into
/// every member's `values` with point-to-point messages, since the world's
/// collectives need every rank: the first member adds them in rank order
/// and sends the sums back, so every member and every run gets the same
/// bits.
template <class Base, class T>
void sum_over(Base& base, const std::vector<int>& members, terse::host_span<T> values)
{
  const int root = members.front();
  if (base.rank() != root) {
    base.send(terse::host_span<const T>(values.data(), values.size()), root, survivors_tag);
    base.recv(values, root, survivors_tag);
    return;
  }
  std::vector<T> theirs(values.size());  // evaluation only: not the training's hot path
  for (std::size_t k = 1; k < members.size(); ++k) {
    base.recv(terse::host_span<T>(theirs), members[k], survivors_tag);
    for (std::size_t i = 0; i < values.size(); ++i) {
      values[i] += theirs[i];
    }
  }
  for (std::size_t k = 1; k < members.size(); ++k) {
    base.send(terse::host_span<const T>(values.data(), values.size()), members[k], survivors_tag);
  }
}

}  // namespace study

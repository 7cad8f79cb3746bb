#pragma once
/// @file
/// What one phase of a cost::step_plan costs a rank on a cost::cluster.
///
/// Network. A phase is a grouped exchange, priced as the simulated_network
/// decorator prices one (transport/detail/decorator_cost.hpp,
/// exchange_seconds, called here for the innermost level): its messages
/// are posted at once and share one latency, and the rank's link
/// serialises its bytes each way,
///
///     t_0 = max_m(lf(s_m)) alpha_0 + max(sum_sends w s / (bf(s) B_0), sum_recvs w s / (bf(s) B_0)),
///
/// with lf, bf the cluster's size factors (1 without), w its wire bytes per
/// byte. On a flat switch every link carries W - 1 concurrent flows each
/// way and SMPI shares it fairly (max-min), so the flows of a symmetric
/// exchange finish together after exactly that. An outer level k, whose
/// link is shared by a group G of ranks, adds
///
///     t_k = (alpha_0 + ... + alpha_k) max lf + max(bytes leaving G, bytes entering G) w / (bf B_k),
///
/// and the phase's network time is the largest t_k.
///
/// Polling. terse's transport learns that a message arrived by testing
/// its request (MPI_Test), one request after another, each test costing
/// test_s (cluster::poll). With R requests (W - 1 sends, W - 1 receives;
/// eager sends complete when posted), the first sweep ends at R test_s:
/// - if the messages arrived by then, the rank needs one more test for
///   each request that was still pending when first tested;
/// - otherwise it keeps sweeping the P requests still pending; they
///   complete together at t (fair sharing), and the sweep that sees the
///   last of them ends P test_s later, plus on average s^2 / (2 (P test_s
///   + s)) once the transport's backoff sleeps s between sweeps (after
///   `polls_before_sleep` sweeps).

#include <terse/core/verbs.hpp>
#include <terse/cost/cluster.hpp>
#include <terse/cost/step_plan.hpp>
#include <terse/transport/detail/decorator_call.hpp>
#include <terse/transport/detail/decorator_cost.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace terse::cost::detail {

using message = terse::detail::exchange_messages::message;

inline message read_message(const void* list, std::size_t index) noexcept
{
  return static_cast<const message*>(list)[index];
}

/// The first rank of `rank`'s link group at a level of `ranks_per_link`.
inline int group_start(int rank, int ranks_per_link) noexcept
{
  return rank / ranks_per_link * ranks_per_link;
}

/// Seconds of rank `rank`'s messages in `p` on `c`'s network (file comment).
inline double network_seconds(const cluster& c, const phase& p, int rank)
{
  const int world = p.world();
  const auto wire_seconds = [&](std::uint64_t bytes, double bandwidth) {
    return c.wire_bytes_per_byte * static_cast<double>(bytes) / (c.factor(bytes).bandwidth * bandwidth);
  };
  double slowest = 0.0;
  double alpha = 0.0;
  for (std::size_t k = 0; k < c.levels.size(); ++k) {
    const level& l = c.levels[k];
    alpha += l.latency_s;
    const int first = group_start(rank, l.ranks_per_link);
    const int last = std::min(world, first + l.ranks_per_link);
    if (first == 0 && last == world) {
      break;  // no message leaves this level's group, nor any outer one
    }
    double latency_factor = 0.0;
    for (int peer = 0; peer < world; ++peer) {
      if (peer < first || peer >= last) {
        latency_factor = std::max({latency_factor, c.factor(p.message_bytes(rank, peer)).latency,
                                   c.factor(p.message_bytes(peer, rank)).latency});
      }
    }
    double seconds = 0.0;
    if (l.ranks_per_link == 1) {
      // The rank's own link: the decorator's grouped-exchange formula, with
      // each message's size factor folded into its link's bandwidth.
      std::vector<message> sends;
      std::vector<message> recvs;
      for (int peer = 0; peer < world; ++peer) {
        if (peer != rank) {
          sends.push_back({peer, p.message_bytes(rank, peer)});
          recvs.push_back({peer, p.message_bytes(peer, rank)});
        }
      }
      terse::detail::verb_call call{.what = verb::send, .grouped = true};
      call.messages = terse::detail::exchange_messages{sends.data(), sends.size(), &read_message,
                                                       recvs.data(), recvs.size(), &read_message};
      seconds = terse::detail::exchange_seconds(call, rank, alpha * latency_factor, [&](int from, int to) {
        const std::uint64_t bytes = p.message_bytes(from, to);
        return c.factor(bytes).bandwidth * l.bandwidth_bytes_per_s / c.wire_bytes_per_byte;
      });
    } else {
      // A shared link: every byte between the group and the rest of the world.
      double leaving = 0.0;
      double entering = 0.0;
      for (int inside = first; inside < last; ++inside) {
        for (int outside = 0; outside < world; ++outside) {
          if (outside < first || outside >= last) {
            leaving += wire_seconds(p.message_bytes(inside, outside), l.bandwidth_bytes_per_s);
            entering += wire_seconds(p.message_bytes(outside, inside), l.bandwidth_bytes_per_s);
          }
        }
      }
      seconds = alpha * latency_factor + std::max(leaving, entering);
    }
    slowest = std::max(slowest, seconds);
  }
  return slowest;
}

/// Seconds after the messages arrived (`network_s` after posting) until
/// rank `rank` has seen every request of `p` complete (file comment).
inline double polling_seconds(const cluster& c, const phase& p, int rank, double network_s)
{
  const polling& poll = c.poll;
  const int world = p.world();
  if (poll.test_s <= 0.0 || world < 2) {
    return 0.0;
  }
  const double test = poll.test_s;
  std::vector<char> eager(static_cast<std::size_t>(world) - 1);
  int eager_sends = 0;
  for (int peer = 0, i = 0; peer < world; ++peer) {
    if (peer != rank) {
      eager[static_cast<std::size_t>(i)] = p.message_bytes(rank, peer) < poll.eager_below_bytes ? 1 : 0;
      eager_sends += eager[static_cast<std::size_t>(i++)];
    }
  }
  const int receives = world - 1;
  const int sends = world - 1;
  const int requests = sends + receives;
  if (network_s <= requests * test) {
    // The first sweep outlasts the messages: one more test for each request
    // that was pending when first tested.
    int late = 0;
    int tested = 0;
    const auto test_receives = [&] {
      for (int i = 0; i < receives; ++i) {
        late += network_s > ++tested * test ? 1 : 0;
      }
    };
    if (p.receives_first) {
      test_receives();
    }
    for (int i = 0; i < sends; ++i) {
      const double done = eager[static_cast<std::size_t>(i)] ? 0.0 : network_s;
      late += done > ++tested * test ? 1 : 0;
    }
    if (!p.receives_first) {
      test_receives();
    }
    return (requests + late) * test - network_s;
  }
  const double pending = static_cast<double>(receives + sends - eager_sends);
  const double sweep = pending * test;
  double seconds = sweep;
  const double sweeps = 1.0 + (network_s - requests * test) / sweep;
  if (poll.polls_before_sleep > 0 && sweeps > poll.polls_before_sleep) {
    seconds += poll.sleep_s * poll.sleep_s / (2.0 * (sweep + poll.sleep_s));
  }
  return seconds;
}

}  // namespace terse::cost::detail

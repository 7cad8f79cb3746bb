#pragma once
/// @file
/// What one verb call costs under a bandwidth-optimal algorithm: the bytes
/// this rank sends and receives (metered) and the alpha-beta time
/// (simulated_network). Both columns of the table "What the decorators
/// count" in docs/transports.md, side by side so they cannot drift apart.

#include <terse/core/verbs.hpp>
#include <terse/transport/detail/decorator_call.hpp>
#include <terse/transport/detail/partition.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace terse::detail {

struct traffic {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
};

/// Bytes rank `rank` of `size` moves. Exact integers: the ring verbs move
/// every block but this rank's own (detail::block_of), which sums over the
/// ranks to (W-1)/W * N (twice for allreduce). A world of one moves nothing.
constexpr traffic traffic_of(const verb_call& call, int rank, int size) noexcept
{
  const std::uint64_t element = call.element_bytes;
  const std::uint64_t all = call.count;
  const std::uint64_t others = all - block_of(call.count, size, rank).count;
  switch (call.what) {
    case verb::allreduce: return {2 * others * element, 2 * others * element};
    case verb::reduce_scatter:
    case verb::allgather: return {others * element, others * element};
    case verb::allgatherv: {
      const std::uint64_t own = std::min<std::uint64_t>(call.own_count, all);
      return {static_cast<std::uint64_t>(size - 1) * own * element, (all - own) * element};
    }
    case verb::broadcast:
      if (size == 1) {
        return {};
      }
      return rank == call.root ? traffic{all * element, 0} : traffic{0, all * element};
    case verb::send:
      if (call.grouped) {
        return {call.bytes_to_peers, call.bytes_from_peers};
      }
      return {all * element, call.exchange ? std::uint64_t{call.received_count} * element : 0};
    case verb::recv: return {0, all * element};
    case verb::barrier: return {};
  }
  return {};
}

/// Steps of a binomial tree over `size` ranks: ceil(log2 size).
constexpr int ceil_log2(int size) noexcept
{
  int steps = 0;
  for (long long reach = 1; reach < size; reach *= 2) {
    ++steps;
  }
  return steps;
}

/// The alpha-beta parameters one call runs under.
struct link_costs {
  double alpha = 0.0;      ///< seconds per message (latency)
  double ring_beta = 0.0;  ///< seconds per byte over the slowest link of the ring r -> r+1
  double send_beta = 0.0;  ///< seconds per byte on the link to call.peer
  double recv_beta = 0.0;  ///< seconds per byte on the link from call.peer (recv) or call.source (sendrecv)
};

/// Modelled seconds of one call in a world of `size`. A sendrecv costs the
/// longer of its two halves, which run at once.
inline double modelled_seconds(const verb_call& call, int size, const link_costs& cost) noexcept
{
  const double w = size;
  const auto n = static_cast<double>(call.bytes());
  switch (call.what) {
    case verb::allreduce: return 2.0 * (w - 1.0) * cost.alpha + 2.0 * (w - 1.0) / w * n * cost.ring_beta;
    case verb::reduce_scatter:
    case verb::allgather: return (w - 1.0) * cost.alpha + (w - 1.0) / w * n * cost.ring_beta;
    case verb::allgatherv: {
      const std::uint64_t spread = call.count - std::min(call.smallest_count, call.count);
      return (w - 1.0) * cost.alpha + static_cast<double>(spread * call.element_bytes) * cost.ring_beta;
    }
    case verb::broadcast: return size == 1 ? 0.0 : ceil_log2(size) * cost.alpha + n * cost.ring_beta;
    case verb::send: {
      const double sending = cost.alpha + n * cost.send_beta;
      if (!call.exchange) {
        return sending;
      }
      const auto received = static_cast<double>(std::uint64_t{call.received_count} * call.element_bytes);
      return std::max(sending, cost.alpha + received * cost.recv_beta);
    }
    case verb::recv: return cost.alpha + n * cost.recv_beta;
    case verb::barrier: return ceil_log2(size) * cost.alpha;
  }
  return 0.0;
}

/// Modelled seconds of a grouped exchange on rank `rank`: every message is
/// posted at once, so they share one latency, and the NIC serialises the
/// bytes each way:
///   alpha + max(sum over sends of bytes / bandwidth(rank, peer),
///               sum over receives of bytes / bandwidth(peer, rank)),
/// or 0 when no message goes to or comes from another rank (messages to
/// this rank itself are free). `bandwidth(from, to)` is in bytes per second.
template <class Bandwidth>
double exchange_seconds(const verb_call& call, int rank, double alpha, Bandwidth&& bandwidth) noexcept
{
  const exchange_messages& messages = call.messages;
  bool remote = false;
  double sending = 0.0;
  for (std::size_t i = 0; i < messages.send_count; ++i) {
    const exchange_messages::message m = messages.send(i);
    if (m.peer != rank) {
      remote = true;
      sending += static_cast<double>(m.bytes) / bandwidth(rank, m.peer);
    }
  }
  double receiving = 0.0;
  for (std::size_t i = 0; i < messages.recv_count; ++i) {
    const exchange_messages::message m = messages.recv(i);
    if (m.peer != rank) {
      remote = true;
      receiving += static_cast<double>(m.bytes) / bandwidth(m.peer, rank);
    }
  }
  return remote ? alpha + std::max(sending, receiving) : 0.0;
}

}  // namespace terse::detail

#pragma once
/// @file
/// The grouped, nonblocking point-to-point exchange every transport offers
/// next to its blocking verbs: a list of messages to peers and a list of
/// messages from peers, all posted at once, completed later. Collectives
/// build their phases from it (an all-to-all is one exchange, not W - 1
/// rounds; a gossip round is one exchange of its permutations), and a
/// trainer's backward pass runs while exchanges are in flight.
///
/// @code
/// std::array sends{terse::outgoing<>{.peer = right, .bytes = mine}};
/// std::array recvs{terse::incoming<>{.peer = left, .bytes = theirs}};
/// terse::exchange_id id = t.start_exchange(terse::host_span<const terse::outgoing<>>(sends),
///                                          terse::host_span<const terse::incoming<>>(recvs), tag);
/// // ... compute ...
/// while (!t.test(id)) { /* more compute */ }   // or t.wait(id)
/// @endcode
///
/// The contract, on every transport:
/// - `start_exchange(sends, recvs, tag)` posts every send and receive and
///   returns without waiting for peers. The send buffers must stay alive and
///   unchanged, and the receive buffers untouched, until the exchange
///   completes (or the transport is destroyed after a failure). The lists
///   of descriptors themselves need not outlive the call.
/// - Messages match by (sender, receiver, tag), in posting order. Distinct
///   tags keep concurrent exchanges apart whatever order ranks post them in.
/// - `test(id)` makes progress without blocking and returns true once every
///   message of `id` has completed; `id` is then spent. `wait(id)` blocks
///   until then. Both throw terse::error, and spend `id`, on errc::timeout
///   (not complete within options().timeout of the start), errc::peer_failed
///   (the world broke) or errc::mismatch (a message's size differs from the
///   posted receive).
/// - With failure_scope::peer, a message whose peer is dead (or, for a
///   receive, silent past the deadline) fails alone: `wait(id)` raises
///   terse::peer_error naming that peer once the rest has completed, and
///   `wait(id, report)` / `test(id, report)` (where a transport offers them)
///   list the failed messages in an exchange_report instead.
/// - A peer may be this rank. Empty messages are allowed and still match.
/// - Nothing allocates once exchanges of the same shape have run before.

#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace terse {

/// A message to `peer`.
template <memory_space Space = memory_space::host>
struct outgoing {
  int peer = 0;
  span<const std::byte, Space> bytes{};
};

/// A message from `peer`, received into `bytes` (its exact size).
template <memory_space Space = memory_space::host>
struct incoming {
  int peer = 0;
  span<std::byte, Space> bytes{};
};

/// Which messages of a completed exchange failed because their peer is dead
/// or silent (transports with failure_scope::peer fill it in
/// `wait(id, report)` / `test(id, report)` instead of raising). Indices into
/// the sends and recvs given to start_exchange; a failed receive's bytes are
/// untouched. Vectors keep their capacity, so reuse one report per loop.
struct exchange_report {
  std::vector<std::size_t> failed_sends;
  std::vector<std::size_t> failed_recvs;

  bool any() const noexcept { return !failed_sends.empty() || !failed_recvs.empty(); }
  void clear() noexcept
  {
    failed_sends.clear();
    failed_recvs.clear();
  }
};

/// Names one started exchange of one transport until it completes.
struct exchange_id {
  std::uint64_t value = 0;
  friend constexpr bool operator==(exchange_id, exchange_id) noexcept = default;
};

}  // namespace terse

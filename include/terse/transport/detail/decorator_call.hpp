#pragma once
/// @file
/// The sizes of one verb call, which is all a transport decorator looks at:
/// decorators never touch data, so they work on host and device spans alike.

#include <terse/core/verbs.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace terse::detail {

/// The messages of a grouped exchange (core/exchange.hpp), whatever their
/// memory space: the peer and byte size of each, read through the caller's
/// own lists, so describing an exchange copies and allocates nothing.
struct exchange_messages {
  struct message {
    int peer = 0;
    std::uint64_t bytes = 0;
  };
  using reader = message (*)(const void* list, std::size_t index) noexcept;

  const void* sends = nullptr;
  std::size_t send_count = 0;
  reader send_at = nullptr;
  const void* recvs = nullptr;
  std::size_t recv_count = 0;
  reader recv_at = nullptr;

  message send(std::size_t i) const noexcept { return send_at(sends, i); }
  message recv(std::size_t i) const noexcept { return recv_at(recvs, i); }
};

/// An exchange_messages::reader for a list of outgoing<S> or incoming<S>.
template <class Message>
exchange_messages::message read_message(const void* list, std::size_t index) noexcept
{
  const Message& m = static_cast<const Message*>(list)[index];
  return {m.peer, static_cast<std::uint64_t>(m.bytes.size_bytes())};
}

struct verb_call {
  verb what = verb::barrier;
  /// A sendrecv: `count` elements go to `peer`, `received_count` come from
  /// `source`. `what` is then verb::send.
  bool exchange = false;
  /// A grouped exchange (start_exchange); `what` is then verb::send and the
  /// sizes are in `bytes_to_peers`, `bytes_from_peers` and `messages`.
  bool grouped = false;
  std::size_t element_bytes = 0;
  /// Elements of the buffer the contract calls N: allreduce and
  /// reduce_scatter the input, allgather(v) the output, broadcast, send and
  /// recv the buffer, sendrecv the sent buffer.
  std::size_t count = 0;
  std::size_t own_count = 0;       ///< allgatherv: this rank's block
  std::size_t smallest_count = 0;  ///< allgatherv: the smallest block of any rank
  std::size_t received_count = 0;  ///< sendrecv: elements received
  int root = -1;                   ///< broadcast
  int peer = -1;                   ///< send: destination; recv: source; sendrecv: destination
  int source = -1;                 ///< sendrecv: source
  /// Exchange: bytes of the sends to other ranks (messages to this rank
  /// itself move nothing and are not counted).
  std::uint64_t bytes_to_peers = 0;
  std::uint64_t bytes_from_peers = 0;  ///< exchange: bytes of the receives from other ranks
  exchange_messages messages{};        ///< exchange: every message, this rank's own included

  std::uint64_t bytes() const noexcept { return std::uint64_t{count} * element_bytes; }

  std::string_view name() const noexcept
  {
    if (grouped) {
      return "exchange";
    }
    return exchange ? std::string_view("sendrecv") : to_string(what);
  }
};

}  // namespace terse::detail

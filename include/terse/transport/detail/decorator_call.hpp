#pragma once
/// @file
/// The sizes of one verb call, which is all a transport decorator looks at:
/// decorators never touch data, so they work on host and device spans alike.

#include <terse/core/verbs.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace terse::detail {

struct verb_call {
  verb what = verb::barrier;
  /// A sendrecv: `count` elements go to `peer`, `received_count` come from
  /// `source`. `what` is then verb::send.
  bool exchange = false;
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

  std::uint64_t bytes() const noexcept { return std::uint64_t{count} * element_bytes; }

  std::string_view name() const noexcept { return exchange ? std::string_view("sendrecv") : to_string(what); }
};

}  // namespace terse::detail

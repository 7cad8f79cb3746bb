#pragma once
/// @file
/// All-to-all of equal-sized byte blocks built from sendrecv (W - 1 rounds,
/// each rank sending to rank + d and receiving from rank - d), so it works
/// on every transport with point-to-point verbs.

#include <terse/core/span.hpp>

#include <cstddef>
#include <cstring>

namespace terse::detail {

/// The tag collectives use for their own point-to-point traffic.
inline constexpr int collective_tag = 0x7e55;

/// Block d of `send` goes to rank d; block s of `recv` comes from rank s.
/// Both hold size() blocks of `block` bytes; this rank's own block is copied.
template <class Transport>
void all_to_all(Transport& transport, host_span<const std::byte> send, host_span<std::byte> recv, std::size_t block)
{
  const int world = transport.size();
  const int rank = transport.rank();
  const auto at = [block](int r) { return static_cast<std::size_t>(r) * block; };
  if (block != 0) {
    std::memcpy(recv.data() + at(rank), send.data() + at(rank), block);
  }
  for (int d = 1; d < world; ++d) {
    const int dest = (rank + d) % world;
    const int source = (rank + world - d) % world;
    transport.sendrecv(send.subspan(at(dest), block), dest, recv.subspan(at(source), block), source, collective_tag);
  }
}

}  // namespace terse::detail

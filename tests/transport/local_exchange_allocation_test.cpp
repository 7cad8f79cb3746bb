// Exchanges of a shape seen before allocate nothing on the local transport:
// the id slots, the pending-receive lists and the message buffers are all
// recycled. Counted with a replaced global operator new, per rank thread.
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <array>
#include <vector>

#include "counting_new.hpp"

using counting_new::allocations;
using counting_new::counting;

TEST_CASE("repeated exchanges of one shape allocate nothing once warm")
{
  REQUIRE(counting_new::counter_works());

  constexpr int world = 4;
  std::vector<long> counted(world, -1);
  terse::run_local(world, [&](terse::local_transport& t) {
    using terse::host_span;
    const auto w = static_cast<std::size_t>(world);
    std::vector<std::byte> out(w * 64, std::byte(t.rank())), in(w * 64);
    std::vector<std::byte> small_out(8, std::byte(1)), small_in(w * 8);
    std::vector<terse::outgoing<>> sends, small_sends;
    std::vector<terse::incoming<>> recvs, small_recvs;
    for (int peer = 0; peer < world; ++peer) {
      const auto p = static_cast<std::size_t>(peer);
      sends.push_back({peer, host_span<const std::byte>(out).subspan(p * 64, 64)});
      recvs.push_back({peer, host_span<std::byte>(in).subspan(p * 64, 64)});
      small_sends.push_back({(peer + 1) % world, host_span<const std::byte>(small_out)});
      small_recvs.push_back({(peer + world - 1) % world, host_span<std::byte>(small_in).subspan(p * 8, 8)});
    }
    long total = 0;
    for (int round = 0; round < 20; ++round) {
      counting = round >= 3;
      allocations = 0;
      // Two exchanges in flight at once, completed by test and by wait.
      const terse::exchange_id big =
          t.start_exchange(host_span<const terse::outgoing<>>(sends), host_span<const terse::incoming<>>(recvs), 1);
      const terse::exchange_id small = t.start_exchange(host_span<const terse::outgoing<>>(small_sends),
                                                        host_span<const terse::incoming<>>(small_recvs), 2);
      t.wait(small);
      while (!t.test(big)) {
      }
      counting = false;
      total += allocations;
      t.barrier();  // nobody runs a round ahead, so mailboxes stay shallow
    }
    counted[static_cast<std::size_t>(t.rank())] = total;
  });
  CHECK(counted == std::vector<long>(world, 0));
}

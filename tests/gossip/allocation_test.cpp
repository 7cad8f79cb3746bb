// Once warm, a gossip round allocates nothing: frames, plans, CHOCO's
// scratch and the local transport's messages are all reused. Counted with a
// replaced global operator new, per rank thread. Every case agrees on its
// plan each round, which keeps any rank at most one round ahead of a peer:
// the local transport keeps one message object per message in flight on a
// channel, so a rank further ahead than ever before (possible on a directed
// graph without a per-round agreement) makes it allocate one more.
#include <terse/collective/gossip.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <vector>

#include "counting_new.hpp"
#include "gossip_support.hpp"

using counting_new::allocations;
using counting_new::counting;

namespace {

// Allocations per rank in rounds 20..29: by then every round shape, and
// every pair of ranks a random matching pairs, has been seen.
template <class Mix, class V>
long steady_allocations(Mix& mix, std::vector<V>& x)
{
  long counted = 0;
  for (int round = 0; round < 30; ++round) {
    counting = round >= 20;
    allocations = 0;
    mix.mix(terse::host_span<V>(x));
    counting = false;
    counted += allocations;
  }
  return counted;
}

}  // namespace

TEST_CASE("a warm gossip round allocates nothing, for every mixer, with plan checks and probes")
{
  REQUIRE(counting_new::counter_works());
  constexpr int world = 4;
  std::vector<long> counted(world * 5, -1);
  terse::run_local(world, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    const terse::gossip_options checked{.probe_every = 2, .check_plan = true};
    std::vector<float> x = gossip_test::start_vector<float>(t.rank(), 500);
    std::vector<double> y = gossip_test::start_vector<double>(t.rank(), 500);
    terse::gossip ring(t, x.size(), terse::topology::ring(world), checked);
    counted[r * 5 + 0] = steady_allocations(ring, x);
    terse::gossip one_peer(t, x.size(), terse::topology::one_peer_exponential(world), checked);
    counted[r * 5 + 1] = steady_allocations(one_peer, x);
    terse::gossip push(t, y.size(), terse::topology::one_peer_exact(world), terse::mixer::push_sum{},
                       terse::elements<double>{}, checked);
    counted[r * 5 + 2] = steady_allocations(push, y);
    terse::gossip choco(
        t, y.size(), terse::topology::exponential(world), terse::mixer::choco{terse::compress::qsgd<7>{}, 0.5},
        terse::elements<double>{},
        terse::gossip_options{.probe_every = 3, .probe = terse::consensus_probe::exact, .check_plan = true});
    counted[r * 5 + 3] = steady_allocations(choco, y);
    terse::gossip random(t, x.size(), terse::topology::random_matchings(world, 4), checked);
    counted[r * 5 + 4] = steady_allocations(random, x);
  });
  for (std::size_t i = 0; i < counted.size(); ++i) {
    CAPTURE(i);
    CHECK(counted[i] == 0);
  }
}

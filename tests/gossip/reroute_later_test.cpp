// failure_policy::reroute beyond one failure at the start: rounds driven by
// start/test/wait, and a second failure after the first was agreed on.
#include <terse/collective/gossip.hpp>
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "failure_support.hpp"
#include "gossip_support.hpp"

namespace {
using namespace std::chrono_literals;
using terse::host_span;

using gossip_test::per_peer;
using gossip_test::wait_for;
}  // namespace

TEST_CASE("rerouting works through start, test and wait too")
{
  constexpr int world = 5;
  constexpr std::size_t n = 4;
  std::vector<std::vector<double>> start(world), final_x(world);
  std::atomic<int> dead{0};
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        const auto r = static_cast<std::size_t>(t.rank());
        if (t.rank() == 2) {
          t.abort("rank 2 dies");
          dead = 1;
          return;
        }
        wait_for(dead, 1);
        terse::gossip mix(
            t, n, terse::topology::ring(world), terse::elements<double>{},
            terse::gossip_options{.on_peer_failure = terse::failure_policy::reroute, .membership_every = 3});
        std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
        start[r] = x;
        for (int s = 0; s < 120; ++s) {
          mix.start(host_span<const double>(x));
          while (!mix.test()) {
            std::this_thread::yield();
          }
          CHECK(mix.test());  // still complete, and wait() does not ask the transport again
          mix.wait(host_span<double>(x));
        }
        final_x[r] = x;
        CHECK(mix.members() == std::vector<int>{0, 1, 3, 4});
      },
      per_peer());
  for (std::size_t i = 0; i < n; ++i) {
    double mean = 0.0;
    for (int r : {0, 1, 3, 4}) {
      mean += start[static_cast<std::size_t>(r)][i] / 4.0;
    }
    for (int r : {0, 1, 3, 4}) {
      CHECK(std::abs(final_x[static_cast<std::size_t>(r)][i] - mean) < 1e-9);
    }
  }
}

TEST_CASE("a second failure after the first was agreed on: the survivors reroute again, epoch 2")
{
  constexpr int world = 8;
  constexpr std::size_t n = 6;
  constexpr int second_failure_after = 19;  // rank 5 dies once every rank finished this step
  constexpr int steps = 220;
  std::vector<double> w_then(world, 0.0);
  std::vector<std::vector<double>> z_then(world), final_x(world);
  std::vector<double> w_final(world, 0.0);
  std::vector<std::vector<int>> members(world);
  std::vector<std::uint64_t> epochs(world);
  std::atomic<int> first_dead{0};
  std::barrier pause(world - 1);  // everyone but rank 3
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        const auto r = static_cast<std::size_t>(t.rank());
        if (t.rank() == 3) {
          t.abort("rank 3 dies first");
          first_dead = 1;
          return;
        }
        wait_for(first_dead, 1);
        terse::gossip mix(
            t, n, terse::topology::one_peer_exponential(world), terse::mixer::push_sum{}, terse::elements<double>{},
            terse::gossip_options{.on_peer_failure = terse::failure_policy::reroute, .membership_every = 4});
        std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n, 5);
        for (int s = 0; s <= second_failure_after; ++s) {
          mix.mix(host_span<double>(x));
        }
        CHECK(mix.graph().epoch() == 1);  // the first failure was agreed on at round 4
        w_then[r] = mix.weight();
        for (double v : x) {
          z_then[r].push_back(v * mix.weight());
        }
        if (t.rank() == 5) {
          t.abort("rank 5 dies second");
          pause.arrive_and_drop();
          return;
        }
        pause.arrive_and_wait();
        for (int s = second_failure_after + 1; s < steps; ++s) {
          mix.mix(host_span<double>(x));
        }
        w_final[r] = mix.weight();
        final_x[r] = x;
        members[r] = mix.members();
        epochs[r] = mix.graph().epoch();
      },
      per_peer());
  const std::vector<int> alive{0, 1, 2, 4, 6, 7};
  double w_alive = 0.0, w_end = 0.0;
  std::vector<double> z_alive(n, 0.0);
  for (int r : alive) {
    const auto i_r = static_cast<std::size_t>(r);
    w_alive += w_then[i_r];
    w_end += w_final[i_r];
    for (std::size_t i = 0; i < n; ++i) {
      z_alive[i] += z_then[i_r][i];
    }
  }
  CHECK(std::abs(w_alive + w_then[5] - (world - 1)) < 1e-12);  // rank 3 took its unit weight with it
  CHECK(std::abs(w_end - w_alive) < 1e-12);                    // no mass lost after rank 5 died
  for (int r : alive) {
    const auto i_r = static_cast<std::size_t>(r);
    CHECK(members[i_r] == alive);
    CHECK(epochs[i_r] == 2);
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(std::abs(final_x[i_r][i] - z_alive[i] / w_alive) < 1e-10);
    }
  }
}

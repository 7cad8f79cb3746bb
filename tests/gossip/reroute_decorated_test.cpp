// Rerouting through transport decorators: metered and simulated_network
// pass the per-peer failure reports of the transport they wrap on, also when
// a test() lets the inner exchange complete before the modelled clock does.
#include <terse/collective/gossip.hpp>
#include <terse/topology.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <thread>
#include <vector>

#include "failure_support.hpp"
#include "gossip_support.hpp"

namespace {
using namespace std::chrono_literals;
using terse::host_span;

// Push-sum on the one-peer exponential graph of 4; rank 1 dies after round
// 0. Returns each survivor's final x and the survivors' mass at the failure.
template <class Wrap>
void run_push_sum(Wrap&& wrap, bool drive_by_test)
{
  constexpr int world = 4;
  constexpr int victim = 1;
  constexpr std::size_t n = 8;
  std::vector<double> w0(world);
  std::vector<std::vector<double>> z0(world), final_x(world);
  std::vector<double> final_w(world, 0.0);
  std::atomic<int> dead{0};
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        auto net = wrap(t);
        const auto r = static_cast<std::size_t>(t.rank());
        terse::gossip mix(
            net, n, terse::topology::one_peer_exponential(world), terse::mixer::push_sum{}, terse::elements<double>{},
            terse::gossip_options{.on_peer_failure = terse::failure_policy::reroute, .membership_every = 2});
        std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
        mix.mix(host_span<double>(x));
        w0[r] = mix.weight();
        for (double v : x) {
          z0[r].push_back(v * mix.weight());
        }
        if (t.rank() == victim) {
          t.abort("rank 1 dies");
          dead = 1;
          return;
        }
        gossip_test::wait_for(dead, 1);
        for (int s = 1; s <= 60; ++s) {
          if (drive_by_test) {  // one early test(), then wait(): the report must survive in between
            mix.start(host_span<const double>(x));
            std::this_thread::sleep_for(1ms);
            (void)mix.test();
            mix.wait(host_span<double>(x));
          } else {
            mix.mix(host_span<double>(x));
          }
        }
        final_x[r] = x;
        final_w[r] = mix.weight();
      },
      {.timeout = 5s, .checked = false, .failures = terse::failure_scope::peer});
  double w_alive = 0.0, w_end = 0.0;
  std::vector<double> z_alive(n, 0.0);
  for (int r = 0; r < world; ++r) {
    if (r == victim) {
      continue;
    }
    w_alive += w0[static_cast<std::size_t>(r)];
    w_end += final_w[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < n; ++i) {
      z_alive[i] += z0[static_cast<std::size_t>(r)][i];
    }
  }
  CHECK(std::abs(w_end - w_alive) < 1e-12);  // no share was dropped
  for (int r = 0; r < world; ++r) {
    if (r == victim) {
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(std::abs(final_x[static_cast<std::size_t>(r)][i] - z_alive[i] / w_alive) < 1e-10);
    }
  }
}
}  // namespace

TEST_CASE("push-sum reroutes through metered")
{
  run_push_sum([](terse::local_transport& t) { return terse::metered<terse::local_transport&>(t); }, false);
}

TEST_CASE("push-sum reroutes through simulated_network whose clock follows the model, rounds driven by test()")
{
  // 5 ms per message: the inner exchange completes (1 ms) well before the
  // modelled time, so test() sees the inner done and the model not yet.
  const auto model = terse::network_model::gbps(1.0, 5e-3);
  run_push_sum(
      [&](terse::local_transport& t) {
        return terse::simulated_network<terse::local_transport&>(t, model, terse::wall_clock::follows_model);
      },
      true);
  run_push_sum([&](terse::local_transport& t) { return terse::simulated_network<terse::local_transport&>(t, model); },
               false);
}

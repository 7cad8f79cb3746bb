// failure_policy::reroute: gossip goes on over the survivors of a failed
// rank, keeping push-sum's mass and averaging's mean.
#include <terse/collective/gossip.hpp>
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <atomic>
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

TEST_CASE("push-sum over one-peer exponential keeps the survivors' mass and reaches their average")
{
  constexpr int world = 8;
  constexpr int victim = 3;
  constexpr std::size_t n = 16;
  constexpr int steps = 200;
  std::vector<double> w_at_failure(world);
  std::vector<std::vector<double>> z_at_failure(world), final_x(world);
  std::vector<std::vector<double>> weights(steps + 1, std::vector<double>(world, 0.0));
  std::vector<std::vector<int>> members(world);
  std::vector<std::uint64_t> epochs(world);
  std::atomic<int> victim_dead{0};
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        const auto r = static_cast<std::size_t>(t.rank());
        terse::gossip mix(
            t, n, terse::topology::one_peer_exponential(world), terse::mixer::push_sum{}, terse::elements<double>{},
            terse::gossip_options{.on_peer_failure = terse::failure_policy::reroute, .membership_every = 4});
        std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
        mix.mix(host_span<double>(x));  // step 0, everyone alive
        w_at_failure[r] = mix.weight();
        for (double v : x) {
          z_at_failure[r].push_back(v * mix.weight());
        }
        if (t.rank() == victim) {  // dies before its step-1 sends
          t.abort("rank 3 dies");
          victim_dead = 1;
          return;
        }
        wait_for(victim_dead, 1);
        for (int s = 1; s <= steps; ++s) {
          mix.mix(host_span<double>(x));
          weights[static_cast<std::size_t>(s)][r] = mix.weight();
        }
        final_x[r] = x;
        members[r] = mix.members();
        epochs[r] = mix.graph().epoch();
      },
      per_peer());
  double w_alive = 0.0;
  std::vector<double> z_alive(n, 0.0);
  double w_all = 0.0;
  for (int r = 0; r < world; ++r) {
    w_all += w_at_failure[static_cast<std::size_t>(r)];
    if (r == victim) {
      continue;
    }
    w_alive += w_at_failure[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < n; ++i) {
      z_alive[i] += z_at_failure[static_cast<std::size_t>(r)][i];
    }
  }
  CHECK(std::abs(w_all - world) < 1e-12);
  CHECK(std::abs(w_alive - (world - w_at_failure[victim])) < 1e-12);
  for (int s = 1; s <= steps; ++s) {
    double sum = 0.0;
    for (int r = 0; r < world; ++r) {
      sum += r == victim ? 0.0 : weights[static_cast<std::size_t>(s)][static_cast<std::size_t>(r)];
    }
    CHECK_MESSAGE(std::abs(sum - w_alive) < 1e-12, "step " << s);
  }
  for (int r = 0; r < world; ++r) {
    if (r == victim) {
      continue;
    }
    const auto i_r = static_cast<std::size_t>(r);
    CHECK(members[i_r] == std::vector<int>{0, 1, 2, 4, 5, 6, 7});
    CHECK(epochs[i_r] == 1);
    double worst = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      worst = std::max(worst, std::abs(final_x[i_r][i] - z_alive[i] / w_alive));
    }
    CHECK_MESSAGE(worst < 1e-10, "rank " << r);
  }
}

namespace {
struct ring_run {
  std::vector<std::vector<double>> start, final_x;
  std::vector<std::vector<double>> sums;  // [step][element] over survivors, rank by rank summed after
  std::vector<int> peer_failed;
  std::vector<std::size_t> members;
};

ring_run ring_without_0_and_6(bool backup_edges, int steps)
{
  constexpr int world = 12;
  constexpr std::size_t n = 8;
  ring_run run;
  run.start.resize(world);
  run.final_x.resize(world);
  run.peer_failed.assign(world, 0);
  run.members.assign(world, 0);
  std::vector<std::vector<std::vector<double>>> per_step(world);
  std::atomic<int> dead{0};
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        const auto r = static_cast<std::size_t>(t.rank());
        if (t.rank() == 0 || t.rank() == 6) {
          t.abort("dies before the first round");
          ++dead;
          return;
        }
        wait_for(dead, 2);
        terse::gossip mix(t, n, terse::topology::ring(world), terse::elements<double>{},
                          terse::gossip_options{.on_peer_failure = terse::failure_policy::reroute,
                                                .membership_every = 2,
                                                .backup_edges = backup_edges});
        std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
        run.start[r] = x;
        try {
          for (int s = 0; s < steps; ++s) {
            mix.mix(host_span<double>(x));
            per_step[r].push_back(x);
          }
        } catch (const terse::error& e) {
          run.peer_failed[r] = e.code() == terse::errc::peer_failed ? 1 : 0;
        }
        run.final_x[r] = x;
        run.members[r] = mix.members().size();
      },
      per_peer());
  for (int s = 0; s < steps; ++s) {
    std::vector<double> sum(n, 0.0);
    for (std::size_t r = 0; r < world; ++r) {
      if (static_cast<int>(per_step[r].size()) > s) {
        for (std::size_t i = 0; i < n; ++i) {
          sum[i] += per_step[r][static_cast<std::size_t>(s)][i];
        }
      }
    }
    run.sums.push_back(sum);
  }
  return run;
}
}  // namespace

TEST_CASE("averaging on a ring of 12 without ranks 0 and 6: backup edges keep it connected, mean kept")
{
  const ring_run run = ring_without_0_and_6(true, 300);
  std::vector<double> start_sum(8, 0.0);
  for (int r = 0; r < 12; ++r) {
    if (r == 0 || r == 6) {
      continue;
    }
    for (std::size_t i = 0; i < 8; ++i) {
      start_sum[i] += run.start[static_cast<std::size_t>(r)][i];
    }
  }
  for (const auto& sum : run.sums) {
    for (std::size_t i = 0; i < 8; ++i) {
      CHECK(std::abs(sum[i] / 10.0 - start_sum[i] / 10.0) < 1e-12);
    }
  }
  for (int r = 0; r < 12; ++r) {
    if (r == 0 || r == 6) {
      continue;
    }
    CHECK(run.peer_failed[static_cast<std::size_t>(r)] == 0);
    CHECK(run.members[static_cast<std::size_t>(r)] == 10);
    for (std::size_t i = 0; i < 8; ++i) {
      CHECK(std::abs(run.final_x[static_cast<std::size_t>(r)][i] - start_sum[i] / 10.0) < 1e-9);
    }
  }
}

TEST_CASE("averaging on a ring of 12 without ranks 0 and 6 and no backup edges: every survivor raises")
{
  const ring_run run = ring_without_0_and_6(false, 4);
  for (int r = 0; r < 12; ++r) {
    if (r != 0 && r != 6) {
      CHECK(run.peer_failed[static_cast<std::size_t>(r)] == 1);
    }
  }
}

TEST_CASE("the default policy still raises: world scope fails every rank, peer scope names the dead peer")
{
  std::vector<int> codes(4, -1);
  std::atomic<int> died{0};
  try {
    terse::run_local(4,
                     [&](terse::local_transport& t) {
                       if (t.rank() == 2) {
                         t.abort("rank 2 dies");
                         died = 1;
                         throw std::runtime_error("rank 2 dies");
                       }
                       wait_for(died, 1);
                       terse::gossip mix(t, 4, terse::topology::ring(4), terse::gossip_options{.check_plan = false});
                       std::vector<float> x(4, 1.0f);
                       try {
                         mix.mix(host_span<float>(x));
                         codes[static_cast<std::size_t>(t.rank())] = 0;
                       } catch (const terse::error& e) {
                         codes[static_cast<std::size_t>(t.rank())] = static_cast<int>(e.code());
                       }
                     },
                     {.timeout = 5s});
  } catch (const std::runtime_error&) {
  }
  // Rank 0's neighbours are 1 and 3; in world scope it fails too (the world broke).
  for (int r : {0, 1, 3}) {
    CHECK(codes[static_cast<std::size_t>(r)] == static_cast<int>(terse::errc::peer_failed));
  }

  std::vector<int> named(4, -2);
  std::atomic<int> dead{0};
  terse::run_local(
      4,
      [&](terse::local_transport& t) {
        if (t.rank() == 2) {
          t.abort("rank 2 dies");
          dead = 1;
          return;
        }
        wait_for(dead, 1);
        terse::gossip mix(t, 4, terse::topology::ring(4), terse::gossip_options{.check_plan = false});
        std::vector<float> x(4, 1.0f);
        try {
          mix.mix(host_span<float>(x));
          named[static_cast<std::size_t>(t.rank())] = -1;
        } catch (const terse::peer_error& e) {
          named[static_cast<std::size_t>(t.rank())] = e.peer();
        }
      },
      per_peer());
  CHECK(named[0] == -1);  // both its neighbours live
  CHECK(named[1] == 2);
  CHECK(named[3] == 2);
}

TEST_CASE("reroute is refused where it cannot work")
{
  terse::run_local(1,
                   [&](terse::local_transport& t) {
                     const auto reroute = terse::gossip_options{.on_peer_failure = terse::failure_policy::reroute};
                     // World scope: the transport would fail every rank anyway.
                     CHECK_THROWS_AS(terse::gossip(t, 4, terse::topology::ring(1), reroute), terse::error);
                   },
                   {});
  terse::run_local(
      1,
      [&](terse::local_transport& t) {
        const auto reroute = terse::gossip_options{.on_peer_failure = terse::failure_policy::reroute};
        try {
          terse::gossip mix(t, 4, terse::topology::ring(1), reroute, terse::mixer::choco<>{});
          FAIL("expected unsupported");
        } catch (const terse::error& e) {
          CHECK(e.code() == terse::errc::unsupported);
        }
      },
      per_peer());
}

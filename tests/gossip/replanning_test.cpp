// Re-planning over the transport and clustered gossip: every rank agrees on
// the same plan, slow links carry less in the modelled network, replay and
// save/load are bit-exact, clusters of unequal sizes keep the global mean.
#include <terse/collective/clustered_gossip.hpp>
#include <terse/collective/gossip.hpp>
#include <terse/collective/replanning.hpp>
#include <terse/topology/static_graphs.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <vector>

#include "gossip_support.hpp"

namespace {

namespace tp = terse::topology;
constexpr int world = 8;
constexpr std::size_t n = 64;

/// Ranks 3 and 7 on 1 Gb/s NICs, the others on 10 Gb/s; a link runs at the slower end.
terse::network_model two_slow_ranks()
{
  std::vector<double> nics(world, 10e9 / 8);
  nics[3] = nics[7] = 1e9 / 8;
  return terse::network_model::from_nics(nics, 25e-6);
}

/// Declares what this rank would have measured: its step time and its
/// links to the graph's neighbours, read off the model.
void declare_from_model(terse::replanner& planner, const terse::network_model& model, const tp::graph& g, int rank)
{
  planner.declare_step_seconds(0.01);
  tp::rank_round mine;
  g.round_for(rank, 0, mine);
  for (const tp::link& l : mine.sends) {
    planner.declare_link(l.peer, model.link_bandwidth(rank, l.peer, world));
  }
}

}  // namespace

TEST_CASE("over the modelled network every rank computes the same plan, and a round costs less than the ring's")
{
  const terse::network_model model = two_slow_ranks();
  std::vector<std::uint64_t> hashes(world);
  std::vector<double> ring_seconds(world), planned_seconds(world), exchange_bytes(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::simulated_network net(terse::metered<terse::local_transport&>(t), model);
    const auto r = static_cast<std::size_t>(t.rank());
    constexpr std::size_t model_size = std::size_t{1} << 16;  // 512 KB: bandwidth, not latency, decides
    terse::gossip mix(net, model_size, tp::ring(world), terse::elements<double>{},
                      terse::gossip_options{.check_plan = false});
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), model_size);
    mix.mix(terse::host_span<double>(x));
    ring_seconds[r] = net.modelled_seconds();
    terse::replanner planner(mix.graph(), t.rank(), {.check_plan = true});
    declare_from_model(planner, model, mix.graph(), t.rank());
    const auto before = net.inner().counts().total().bytes_sent;
    const tp::plan& p = terse::replan(mix, planner);
    exchange_bytes[r] = static_cast<double>(net.inner().counts().total().bytes_sent - before);
    hashes[r] = p.topology.plan_hash(0);
    CHECK(mix.graph().epoch() == 1);
    net.reset();
    mix.mix(terse::host_span<double>(x));
    planned_seconds[r] = net.modelled_seconds();
  });
  CHECK(std::count(hashes.begin(), hashes.end(), hashes[0]) == world);
  // One allgather of W + 1 doubles per rank (a ring allgather forwards
  // W - 1 blocks) and the plan check's two integers.
  CHECK(exchange_bytes[0] == 8.0 * (world + 1) * (world - 1) + 16.0);
  double ring_total = 0, planned_total = 0;
  for (int r = 0; r < world; ++r) {
    ring_total += ring_seconds[static_cast<std::size_t>(r)];
    planned_total += planned_seconds[static_cast<std::size_t>(r)];
  }
  CHECK(planned_total < 0.8 * ring_total);
  CHECK(*std::max_element(planned_seconds.begin(), planned_seconds.end()) <
        *std::max_element(ring_seconds.begin(), ring_seconds.end()));
}

TEST_CASE("a record that is not finite makes every rank refuse the exchange, and nothing changes")
{
  std::vector<int> refused(world, 0);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::gossip mix(t, n, tp::ring(world), terse::elements<double>{});
    terse::replanner planner(mix.graph(), t.rank());
    planner.declare_step_seconds(t.rank() == 5 ? std::nan("") : 0.01);
    try {
      terse::replan(mix, planner);
    } catch (const terse::error& e) {
      refused[static_cast<std::size_t>(t.rank())] = e.code() == terse::errc::invalid_argument ? 1 : 0;
    }
    CHECK(mix.graph().epoch() == 0);
    CHECK(planner.epoch() == 0);
  });
  CHECK(std::count(refused.begin(), refused.end(), 1) == world);
}

TEST_CASE("replay and save/load: same seed and declared measurements give the same bits")
{
  const terse::network_model model = two_slow_ranks();
  // rounds, replan, rounds, [save/load], rounds, replan, rounds.
  const auto run = [&](bool reload) {
    std::vector<std::vector<double>> out(world);
    terse::run_local(world, [&](terse::local_transport& t) {
      const auto options = terse::gossip_options{.check_plan = true};
      auto mix = std::make_unique<terse::gossip<double, terse::mixer::average, terse::local_transport>>(
          t, n, tp::ring(world), options);
      auto planner = std::make_unique<terse::replanner>(mix->graph(), t.rank(), terse::replan_options{.seed = 3});
      std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
      const auto rounds = [&](int k) {
        for (int i = 0; i < k; ++i) {
          mix->mix(terse::host_span<double>(x));
        }
      };
      rounds(3);
      declare_from_model(*planner, model, mix->graph(), t.rank());
      terse::replan(*mix, *planner);
      rounds(3);
      if (reload) {
        std::stringstream blob;
        terse::save_planned(blob, *mix, *planner);
        mix = std::make_unique<terse::gossip<double, terse::mixer::average, terse::local_transport>>(
            t, n, tp::ring(world), options);
        planner = std::make_unique<terse::replanner>(mix->graph(), t.rank(), terse::replan_options{.seed = 3});
        terse::load_planned(blob, *mix, *planner);
        CHECK(planner->epoch() == 1);
        CHECK(mix->graph().name() == "planned");
      }
      rounds(3);
      declare_from_model(*planner, model, mix->graph(), t.rank());
      terse::replan(*mix, *planner);
      CHECK(mix->graph().epoch() == 2);
      rounds(3);
      out[static_cast<std::size_t>(t.rank())] = x;
    });
    return out;
  };
  const auto straight = run(false);
  CHECK(run(false) == straight);
  CHECK(run(true) == straight);
}

TEST_CASE("a corrupt or foreign replanner blob is refused and changes nothing")
{
  terse::run_local(2, [&](terse::local_transport& t) {
    terse::replanner planner(tp::ring(2), t.rank());
    planner.declare_step_seconds(0.5);
    planner.exchange(t);
    std::stringstream blob;
    planner.save(blob);
    std::string text = blob.str();
    std::stringstream shorter(text.substr(0, text.size() - 3));
    terse::replanner other(tp::ring(2), t.rank());
    CHECK_THROWS_AS(other.load(shorter), terse::error);
    CHECK(other.epoch() == 0);
    terse::replanner elsewhere(tp::ring(2), 1 - t.rank());
    std::stringstream again(text);
    CHECK_THROWS_AS(elsewhere.load(again), terse::error);
    std::stringstream good(text);
    other.load(good);
    CHECK(other.epoch() == 1);
    CHECK(other.topology().plan_hash(0) == planner.topology().plan_hash(0));
  });
}

TEST_CASE("clusters of sizes 1, 3 and 4 keep the global mean to 1e-12 and converge to it")
{
  const tp::clustering clusters = tp::clusters_from({1, 2, 2, 2, 0, 0, 0, 0});
  for (const std::uint64_t outer_every : {std::uint64_t{1}, std::uint64_t{3}}) {
    CAPTURE(outer_every);
    const std::vector<double> mean0 = gossip_test::start_mean(world, n);
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::clustered_gossip mix(t, n, clusters, terse::clustered_options{.outer_every = outer_every});
      std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
      std::vector<double> scratch;
      for (int round = 0; round < 4; ++round) {
        mix.mix(terse::host_span<double>(x));
        CHECK(gossip_test::mean_drift(t, x, mean0, scratch) <= 1e-12 * gossip_test::max_abs(mean0));
      }
      // The leaders are linked completely: after an outer round every rank
      // holds the global mean.
      for (std::size_t i = 0; i < n; ++i) {
        CHECK(std::abs(x[i] - mean0[i]) <= 1e-12 * std::max(1.0, std::abs(mean0[i])));
      }
    });
  }
}

TEST_CASE("five clusters on a ring of leaders: mean kept every round, distance contracts by rho")
{
  const tp::clustering clusters = tp::clusters_from({0, 1, 2, 3, 4, 4, 3, 0});  // sizes 2, 1, 1, 2, 2
  const terse::clustered_options options{.outer_every = 1, .links = tp::leader_links::ring};
  const double rho = tp::clustered_graph(clusters, options.links).rho();
  const std::vector<double> mean0 = gossip_test::start_mean(world, n);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::clustered_gossip mix(t, n, clusters, options);
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
    std::vector<double> scratch;
    const auto distance = [&] {
      double d = 0;
      for (std::size_t i = 0; i < n; ++i) {
        d += (x[i] - mean0[i]) * (x[i] - mean0[i]);
      }
      std::vector<double> sum{d};
      t.allreduce(terse::host_span<double>(sum), terse::reduce_op::sum);
      return std::sqrt(sum[0]);
    };
    const double d0 = distance();
    for (int round = 1; round <= 40; ++round) {
      mix.mix(terse::host_span<double>(x));
      CHECK(gossip_test::mean_drift(t, x, mean0, scratch) <= 1e-12 * gossip_test::max_abs(mean0));
      CHECK(distance() <= std::pow(rho, round) * d0 * (1 + 1e-9) + 1e-13);
    }
    CHECK(distance() <= 1e-3 * d0);
  });
}

TEST_CASE("push-sum on a planned graph keeps the mean and reaches it")
{
  const terse::network_model model = two_slow_ranks();
  const std::vector<double> mean0 = gossip_test::start_mean(world, n);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::gossip mix(t, n, tp::ring(world), terse::mixer::push_sum{}, terse::elements<double>{});
    terse::replanner planner(mix.graph(), t.rank());
    declare_from_model(planner, model, mix.graph(), t.rank());
    const double rho = terse::replan(mix, planner).rho;
    CHECK(rho < 0.9);
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
    std::vector<double> scratch;
    for (int round = 0; round < 200; ++round) {
      mix.mix(terse::host_span<double>(x));
    }
    CHECK(gossip_test::mean_drift(t, x, mean0, scratch) <= 1e-12 * gossip_test::max_abs(mean0));
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(std::abs(x[i] - mean0[i]) <= 1e-8);
    }
  });
}

TEST_CASE("a clustering over another world is refused")
{
  terse::run_local(2, [&](terse::local_transport& t) {
    CHECK_THROWS_AS(terse::clustered_gossip(t, n, tp::clusters_from({0, 1, 1})), terse::error);
  });
}

// Modelled communication time per gossip round on 8 ranks, two of them
// (3 and 7) on 1 Gb/s NICs and the others on 10 Gb/s (25 us per message),
// for the study's model size: the static ring, the ring re-planned from the
// measured links, and clusters by speed. Prints the mean and the slowest
// rank's time per round (docs/gossip.md, "Re-planning and clusters").
//
//   replanning_costs [rounds] [degree]
#include <terse/collective/clustered_gossip.hpp>
#include <terse/collective/gossip.hpp>
#include <terse/collective/replanning.hpp>
#include <terse/topology/planner.hpp>
#include <terse/topology/static_graphs.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr int world = 8;
constexpr std::size_t model_size = 235146;  // the study's MLP, floats

terse::network_model two_slow_ranks()
{
  std::vector<double> nics(world, 10e9 / 8);
  nics[3] = nics[7] = 1e9 / 8;
  return terse::network_model::from_nics(nics, 25e-6);
}

using network = terse::simulated_network<terse::metered<terse::local_transport&>>;

/// What rank `r` measured on the links it used in round 0 of `g`.
std::vector<double> measured(const network& net, const terse::topology::graph& g)
{
  std::vector<double> links(world, 0.0);
  terse::topology::rank_round mine;
  g.round_for(net.rank(), 0, mine);
  for (const terse::topology::link& l : mine.sends) {
    links[static_cast<std::size_t>(l.peer)] = net.model().link_bandwidth(net.rank(), l.peer, world);
  }
  return links;
}

void report(const char* what, const std::vector<double>& seconds, int rounds, double rho)
{
  double mean = 0;
  for (double s : seconds) {
    mean += s / world;
  }
  const double slowest = *std::max_element(seconds.begin(), seconds.end());
  std::printf("%-34s mean %7.3f ms  slowest rank %7.3f ms  rho %.4f\n", what, 1e3 * mean / rounds,
              1e3 * slowest / rounds, rho);
}

}  // namespace

int main(int argc, char** argv)
{
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 8;
  const auto degree = static_cast<std::size_t>(argc > 2 ? std::atoi(argv[2]) : 3);
  const terse::network_model model = two_slow_ranks();
  std::vector<double> ring(world), planned(world), exchange(world), clusters1(world), clusters4(world);
  double planned_rho = 0;
  double cluster_rho = 0;
  std::string edges;
  terse::run_local(world, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    network net(terse::metered<terse::local_transport&>(t), model);
    std::vector<float> x(model_size, static_cast<float>(t.rank()));
    terse::gossip mix(net, model_size, terse::topology::ring(world), terse::gossip_options{.check_plan = false});
    for (int k = 0; k < rounds; ++k) {
      mix.mix(terse::host_span<float>(x));
    }
    ring[r] = net.modelled_seconds();

    // The measurement exchange, then the plan every rank computes alike.
    terse::replanner planner(mix.graph(), t.rank(), terse::replan_options{.planner = {.degree = degree}});
    planner.declare_step_seconds(1.0);
    const std::vector<double> links = measured(net, mix.graph());
    for (int peer = 0; peer < world; ++peer) {
      if (links[static_cast<std::size_t>(peer)] > 0) {
        planner.declare_link(peer, links[static_cast<std::size_t>(peer)]);
      }
    }
    net.reset();
    const terse::topology::plan& p = terse::replan(mix, planner);
    exchange[r] = net.modelled_seconds();
    net.reset();
    for (int k = 0; k < rounds; ++k) {
      mix.mix(terse::host_span<float>(x));
    }
    planned[r] = net.modelled_seconds();
    if (r == 0) {
      planned_rho = p.rho;
      for (const auto& [i, j] : p.edges) {
        edges += " " + std::to_string(i) + "-" + std::to_string(j);
      }
    }

    const terse::topology::clustering c = terse::topology::cluster_by_speed(planner.agreed(), 2);
    for (const std::uint64_t outer : {std::uint64_t{1}, std::uint64_t{4}}) {
      terse::clustered_gossip<float, network> clustered(net, model_size, c,
                                                        terse::clustered_options{.outer_every = outer});
      net.reset();
      for (int k = 0; k < rounds; ++k) {
        clustered.mix(terse::host_span<float>(x));
      }
      (outer == 1 ? clusters1 : clusters4)[r] =
          net.modelled_seconds() + clustered.cluster_transport().modelled_seconds();
      cluster_rho = clustered.graph().rho();
    }
  });
  std::printf("8 ranks, ranks 3 and 7 on 1 Gb/s, others 10 Gb/s, 25 us; %zu floats; %d rounds each\n", model_size,
              rounds);
  report("static ring", ring, rounds, terse::topology::ring(world).rho());
  report(("re-planned (degree " + std::to_string(degree) + ")").c_str(), planned, rounds, planned_rho);
  report("clusters {fast 6, slow 2}, outer 1", clusters1, rounds, cluster_rho);
  report("clusters {fast 6, slow 2}, outer 4", clusters4, rounds, cluster_rho);
  std::printf("planned edges:%s\n", edges.c_str());
  report("the measurement exchange (once)", exchange, 1, 0.0);
  return 0;
}

// Neighbour averaging (D-PSGD) over the local transport: the mean is kept,
// the spread contracts at the topology's rate, exact graphs are exact, and
// W = 2 equals the allreduce bit for bit.
#include <terse/collective/gossip.hpp>
#include <terse/schedule/periodic.hpp>
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <mutex>
#include <vector>

#include "gossip_support.hpp"

namespace {

using terse::host_span;

struct trace {
  std::vector<double> distance;    // (1/W) sum_i |x_i - xbar|^2 after each round (index 0: before)
  std::vector<double> mean_drift;  // max_k |xbar_t - xbar_0| after each round
};

// Runs `rounds` rounds of averaging on `graph` and records, on rank 0, the
// exact consensus distance and the drift of the mean.
trace run_average(const terse::topology::graph& graph, std::size_t n, int rounds)
{
  const int world = graph.world();
  trace out;
  const std::vector<double> mean0 = gossip_test::start_mean(world, n);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::gossip mix(t, n, graph, terse::elements<double>{});
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
    std::vector<double> mean(n);
    auto record = [&] {
      const double d = mix.consensus_distance(host_span<const double>(x));
      const double drift = gossip_test::mean_drift(t, x, mean0, mean);
      if (t.rank() == 0) {
        out.distance.push_back(d);
        out.mean_drift.push_back(drift);
      }
    };
    record();
    for (int r = 0; r < rounds; ++r) {
      mix.mix(host_span<double>(x));
      record();
    }
  });
  return out;
}

}  // namespace

TEST_CASE("averaging keeps the mean and contracts by rho per round on static graphs")
{
  namespace topo = terse::topology;
  const std::size_t n = 64;
  for (const topo::graph& g :
       {topo::ring(8), topo::ring(5), topo::exponential(8), topo::exponential(6), topo::torus(3, 4), topo::hypercube(8),
        topo::complete(5), topo::star(6), topo::binary_tree(7)}) {
    CAPTURE(g.name());
    CAPTURE(g.world());
    const trace tr = run_average(g, n, 60);
    const double rho = g.rho();
    const double scale = gossip_test::max_abs(gossip_test::start_mean(g.world(), n)) + 1.0;
    for (std::size_t t = 0; t < tr.distance.size(); ++t) {
      CAPTURE(t);
      REQUIRE(tr.mean_drift[t] <= 1e-12 * scale);
      // |X_t - 1 xbar|_F <= rho^t |X_0 - 1 xbar|_F; distances are squares.
      REQUIRE(std::sqrt(tr.distance[t]) <=
              std::pow(rho, static_cast<double>(t)) * std::sqrt(tr.distance[0]) * (1 + 1e-9) + 1e-13);
    }
  }
}

TEST_CASE("the one-peer exponential graph averages exactly after log2 W rounds through the transport")
{
  for (int world : {2, 4, 8, 16}) {
    CAPTURE(world);
    const int tau = static_cast<int>(std::log2(world));
    const trace tr = run_average(terse::topology::one_peer_exponential(world), 32, tau);
    REQUIRE(tr.distance.back() <= 1e-28);
    if (world > 2) {
      REQUIRE(tr.distance[static_cast<std::size_t>(tau) - 1] > 1e-6);  // not before
    }
  }
  // Not exact for W = 6: still apart after ceil(log2 6) = 3 rounds.
  const trace six = run_average(terse::topology::one_peer_exponential(6), 32, 3);
  REQUIRE(six.distance.back() > 1e-6);
}

TEST_CASE("the any-W one-peer schedule averages exactly through the transport")
{
  for (const auto& [world, rounds] : std::vector<std::pair<int, int>>{{3, 3}, {5, 5}, {6, 4}, {12, 5}}) {
    CAPTURE(world);
    const terse::topology::graph g = terse::topology::one_peer_exact(world);
    const trace tr = run_average(g, 32, rounds);
    REQUIRE(tr.distance.back() <= 1e-26);
  }
}

TEST_CASE("W = 2 averaging and push-sum equal the allreduce exactly")
{
  const std::size_t n = 257;
  std::vector<std::vector<double>> averaged(2), pushed(2), reduced(2);
  terse::run_local(2, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
    std::vector<double> y = x;
    std::vector<double> z = x;
    terse::gossip avg(t, n, terse::topology::ring(2), terse::elements<double>{});
    avg.mix(host_span<double>(x));
    terse::gossip push(t, n, terse::topology::one_peer_exponential(2), terse::mixer::push_sum{},
                       terse::elements<double>{});
    push.mix(host_span<double>(y));
    t.allreduce(host_span<double>(z), terse::reduce_op::average);
    averaged[r] = x;
    pushed[r] = y;
    reduced[r] = z;
  });
  for (std::size_t r = 0; r < 2; ++r) {
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(averaged[r][i] == reduced[r][i]);
      REQUIRE(pushed[r][i] == reduced[r][i]);
    }
  }
}

TEST_CASE("changes made between start and wait are added to the mixed values")
{
  // D-PSGD's overlap: x_{t+1} = sum_j M_ij x_j(t) - eta g_i, with the
  // gradient step taken while the round is in flight.
  const std::size_t n = 16;
  std::vector<std::vector<double>> overlapped(4), reference(4);
  terse::run_local(4, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
    std::vector<double> y = x;
    terse::gossip a(t, n, terse::topology::ring(4), terse::elements<double>{});
    a.start(host_span<const double>(x));
    for (std::size_t i = 0; i < n; ++i) {
      x[i] -= 0.25 * static_cast<double>(i + r);  // the optimizer step
    }
    a.wait(host_span<double>(x));
    terse::gossip b(t, n, terse::topology::ring(4), terse::elements<double>{});
    b.mix(host_span<double>(y));
    for (std::size_t i = 0; i < n; ++i) {
      y[i] -= 0.25 * static_cast<double>(i + r);
    }
    overlapped[r] = x;
    reference[r] = y;
  });
  for (std::size_t r = 0; r < 4; ++r) {
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(overlapped[r][i] == doctest::Approx(reference[r][i]).epsilon(1e-15));
    }
  }
}

TEST_CASE("a periodic schedule gossips every H optimizer steps")
{
  terse::run_local(3, [&](terse::local_transport& t) {
    std::vector<float> x(8, static_cast<float>(t.rank()));
    terse::gossip mix(t, x.size(), terse::topology::ring(3), terse::schedule::periodic{4});
    int mixed = 0;
    for (int step = 0; step < 12; ++step) {
      mixed += mix.on_parameters(host_span<float>(x)) == terse::sync_action::average ? 1 : 0;
    }
    REQUIRE(mixed == 3);
    REQUIRE(mix.rounds() == 3);
    // A ring of three with weights 1/3 is the complete graph: exact after one round.
    REQUIRE(x[0] == doctest::Approx(1.0f));
  });
}

TEST_CASE("a world of one rank: every mixer leaves the values as they are")
{
  terse::run_local(1, [&](terse::local_transport& t) {
    const std::vector<double> start = gossip_test::start_vector<double>(0, 33);
    std::vector<double> a = start, b = start, c = start;
    terse::gossip avg(t, a.size(), terse::topology::ring(1), terse::elements<double>{});
    terse::gossip push(t, b.size(), terse::topology::one_peer_exponential(1), terse::mixer::push_sum{},
                       terse::elements<double>{});
    terse::gossip choco(t, c.size(), terse::topology::complete(1),
                        terse::mixer::choco{terse::compress::identity{}, 1.0}, terse::elements<double>{});
    for (int round = 0; round < 3; ++round) {
      avg.mix(host_span<double>(a));
      push.mix(host_span<double>(b));
      choco.mix(host_span<double>(c));
    }
    REQUIRE(a == start);
    REQUIRE(b == start);
    REQUIRE(c == start);
    REQUIRE(push.weight() == 1.0);
    REQUIRE(avg.consensus_distance(host_span<const double>(a)) == 0.0);
  });
}

TEST_CASE("an empty vector mixes: frames of a header alone")
{
  terse::run_local(3, [&](terse::local_transport& t) {
    std::vector<float> none;
    terse::gossip mix(t, 0, terse::topology::ring(3));
    mix.mix(host_span<float>(none));
    REQUIRE(mix.rounds() == 1);
  });
}

TEST_CASE("misuse raises invalid_argument: wrong sizes, wait without start, start twice")
{
  terse::run_local(2, [&](terse::local_transport& t) {
    std::vector<float> x(4, 1.0f), y(5, 1.0f);
    terse::gossip mix(t, x.size(), terse::topology::ring(2));
    auto code = [](auto&& body) {
      try {
        body();
      } catch (const terse::error& e) {
        return e.code();
      }
      return terse::errc::internal;
    };
    REQUIRE(code([&] { mix.mix(host_span<float>(y)); }) == terse::errc::invalid_argument);
    REQUIRE(code([&] { mix.wait(host_span<float>(x)); }) == terse::errc::invalid_argument);
    mix.start(host_span<const float>(x));
    REQUIRE(code([&] { mix.start(host_span<const float>(x)); }) == terse::errc::invalid_argument);
    REQUIRE(code([&] { mix.set_graph(terse::topology::ring(2)); }) == terse::errc::invalid_argument);
    mix.wait(host_span<float>(x));
    REQUIRE(mix.rounds() == 1);
    REQUIRE(code([&] {
              terse::gossip bad(t, 4, terse::topology::ring(2), terse::mixer::choco{terse::compress::identity{}, 1.5});
            }) == terse::errc::invalid_argument);
  });
}

TEST_CASE("the sketched consensus distance is within its stated bound of the exact one")
{
  // Never below the truth, above it by at most 2 eps/(1 + eps) |xbar|^2
  // (with probability >= 1 - delta; these seeded cases are all inside).
  const std::size_t n = 2000;
  for (double spread : {0.01, 0.3, 3.0}) {
    CAPTURE(spread);
    terse::run_local(6, [&](terse::local_transport& t) {
      std::vector<double> x(n);
      for (std::size_t i = 0; i < n; ++i) {
        x[i] = 1.0 + spread * gossip_test::start_value(t.rank(), i, 23);
      }
      terse::gossip mix(t, n, terse::topology::ring(6), terse::elements<double>{});
      std::vector<double> mean = x;
      t.allreduce(host_span<double>(mean), terse::reduce_op::average);
      double mean_squared = 0;
      for (double m : mean) {
        mean_squared += m * m;
      }
      const double exact = mix.consensus_distance(host_span<const double>(x));
      const double estimate = mix.consensus_estimate(host_span<const double>(x));
      const double eps = std::sqrt(8.0 / 250.0);
      REQUIRE(estimate >= exact * (1 - 1e-12));
      REQUIRE(estimate <= exact + 2 * eps / (1 + eps) * mean_squared);
    });
  }
}

// Push-sum (SGP's mixer) on a directed graph: exact mean with Σw = W kept,
// where receiver-normalised averaging on the same graph settles on a
// weighted mean.
#include <terse/collective/gossip.hpp>
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <utility>
#include <vector>

#include "gossip_support.hpp"

namespace {

using terse::host_span;

// W = 8: i -> i+1 for every i, and i -> i+3 for even i.
std::vector<std::pair<int, int>> skewed_arcs()
{
  std::vector<std::pair<int, int>> arcs;
  for (int i = 0; i < 8; ++i) {
    arcs.emplace_back(i, (i + 1) % 8);
    if (i % 2 == 0) {
      arcs.emplace_back(i, (i + 3) % 8);
    }
  }
  return arcs;
}

// The left Perron vector of a row-stochastic matrix: pi^T M = pi^T, sum 1.
std::vector<double> stationary(const std::vector<std::vector<double>>& m)
{
  const std::size_t w = m.size();
  std::vector<double> pi(w, 1.0 / static_cast<double>(w));
  for (int it = 0; it < 20000; ++it) {
    std::vector<double> next(w, 0.0);
    for (std::size_t i = 0; i < w; ++i) {
      for (std::size_t j = 0; j < w; ++j) {
        next[j] += pi[i] * m[i][j];
      }
    }
    pi = next;
  }
  return pi;
}

}  // namespace

TEST_CASE("push-sum on a directed graph reaches the exact mean and keeps the total weight")
{
  const std::size_t n = 40;
  const auto arcs = skewed_arcs();
  const terse::topology::graph g = terse::topology::directed(8, arcs, terse::topology::stochasticity::column);
  const std::vector<double> mean = gossip_test::start_mean(8, n);
  double scale = 0;
  for (int r = 0; r < 8; ++r) {
    scale = std::max(scale, gossip_test::max_abs(gossip_test::start_vector<double>(r, n)));
  }
  std::vector<int> reached(8, -1);
  std::vector<double> worst_weight_error(8, 0.0);
  terse::run_local(8, [&](terse::local_transport& t) {
    terse::gossip push(t, n, g, terse::mixer::push_sum{}, terse::elements<double>{});
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
    const auto r = static_cast<std::size_t>(t.rank());
    for (int step = 1; step <= 130; ++step) {
      push.mix(host_span<double>(x));
      double total[1] = {push.weight()};
      t.allreduce(host_span<double>(total, 1), terse::reduce_op::sum);
      worst_weight_error[r] = std::max(worst_weight_error[r], std::abs(total[0] - 8.0));
      double err = 0;
      for (std::size_t i = 0; i < n; ++i) {
        err = std::max(err, std::abs(x[i] - mean[i]));
      }
      if (reached[r] < 0 && err <= 1e-12 * scale) {
        reached[r] = step;
      }
    }
  });
  for (int r = 0; r < 8; ++r) {
    CAPTURE(r);
    MESSAGE("rank " << r << " within 1e-12 after " << reached[static_cast<std::size_t>(r)] << " steps");
    REQUIRE(reached[static_cast<std::size_t>(r)] > 0);
    REQUIRE(worst_weight_error[static_cast<std::size_t>(r)] <= 1e-12);
  }
}

TEST_CASE("receiver-normalised averaging on the same graph converges to the stationary weighted mean, not the mean")
{
  const std::size_t n = 24;
  const auto arcs = skewed_arcs();
  const terse::topology::graph g = terse::topology::directed(8, arcs, terse::topology::stochasticity::row);
  const std::vector<double> pi = stationary(g.round(0).dense());
  std::vector<double> weighted(n, 0.0);
  for (int r = 0; r < 8; ++r) {
    const std::vector<double> x0 = gossip_test::start_vector<double>(r, n);
    for (std::size_t i = 0; i < n; ++i) {
      weighted[i] += pi[static_cast<std::size_t>(r)] * x0[i];
    }
  }
  const std::vector<double> mean = gossip_test::start_mean(8, n);
  double gap = 0;
  for (std::size_t i = 0; i < n; ++i) {
    gap = std::max(gap, std::abs(weighted[i] - mean[i]));
  }
  REQUIRE(gap > 1e-3);  // the graph is skewed enough to tell them apart
  std::vector<double> error(8, 0.0);
  terse::run_local(8, [&](terse::local_transport& t) {
    terse::gossip avg(t, n, g, terse::elements<double>{});
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
    for (int step = 0; step < 400; ++step) {
      avg.mix(host_span<double>(x));
    }
    double err = 0;
    for (std::size_t i = 0; i < n; ++i) {
      err = std::max(err, std::abs(x[i] - weighted[i]));
    }
    error[static_cast<std::size_t>(t.rank())] = err;
  });
  for (double e : error) {
    REQUIRE(e <= 1e-10);
  }
}

TEST_CASE("push-sum on the one-peer exponential graph is exact after log2 W rounds, with w = 1 throughout")
{
  const std::size_t n = 16;
  const std::vector<double> mean = gossip_test::start_mean(16, n);
  terse::run_local(16, [&](terse::local_transport& t) {
    terse::gossip push(t, n, terse::topology::one_peer_exponential(16), terse::mixer::push_sum{},
                       terse::elements<double>{});
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
    for (int round = 0; round < 4; ++round) {
      push.mix(host_span<double>(x));
      REQUIRE(push.weight() == 1.0);
    }
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(std::abs(x[i] - mean[i]) <= 1e-15);
    }
  });
}

TEST_CASE("push-sum refuses row-stochastic weights and averaging refuses column-stochastic ones")
{
  const auto arcs = skewed_arcs();
  terse::run_local(8, [&](terse::local_transport& t) {
    const auto rows = terse::topology::directed(8, arcs, terse::topology::stochasticity::row);
    const auto columns = terse::topology::directed(8, arcs, terse::topology::stochasticity::column);
    CHECK_THROWS_AS(terse::gossip(t, 4, rows, terse::mixer::push_sum{}), terse::error);
    CHECK_THROWS_AS(terse::gossip(t, 4, columns), terse::error);
    CHECK_THROWS_AS(terse::gossip(t, 4, terse::topology::ring(7)), terse::error);  // another world
  });
}

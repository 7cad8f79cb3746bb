// Weights and their validation: Metropolis-Hastings on random graphs, user
// matrices and arcs, and the checks that reject what would bias an average.
#include <terse/topology.hpp>
#include <terse/topology/detail/perron.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "topology_checks.hpp"

namespace {

namespace tp = terse::topology;
using topology_checks::check_graph;
using topology_checks::matrix;
using topology_checks::rejection;
using topology_checks::rejects;
using edge_list = std::vector<std::pair<int, int>>;

/// A random connected graph: a random spanning tree plus extra edges.
edge_list random_connected(int world, topology_checks::uniform_source& random)
{
  edge_list edges;
  for (int r = 1; r < world; ++r) {
    edges.emplace_back(random.below(r), r);
  }
  const int extra = random.below(2 * world);
  for (int k = 0; k < extra; ++k) {
    const int a = random.below(world);
    const int b = random.below(world);
    if (a != b) {
      edges.emplace_back(a, b);
    }
  }
  return edges;
}

}  // namespace

TEST_CASE("Metropolis-Hastings weights are symmetric, doubly stochastic and follow 1/(1 + max(d_i, d_j))")
{
  topology_checks::uniform_source random(20240611);
  for (int trial = 0; trial < 20; ++trial) {
    const int world = 2 + random.below(40);
    const edge_list edges = random_connected(world, random);
    CAPTURE(world);
    const tp::graph g = tp::from_edges(world, edges);
    CHECK_FALSE(g.directed());
    check_graph(g);
    std::vector<std::set<int>> neighbours(static_cast<std::size_t>(world));
    for (const auto& [a, b] : edges) {
      neighbours[static_cast<std::size_t>(a)].insert(b);
      neighbours[static_cast<std::size_t>(b)].insert(a);
    }
    const matrix m = g.round(0).dense();
    std::size_t most = 0;
    for (std::size_t i = 0; i < m.size(); ++i) {
      most = std::max(most, neighbours[i].size());
      double off = 0.0;
      for (std::size_t j = 0; j < m.size(); ++j) {
        const bool linked = neighbours[i].count(static_cast<int>(j)) != 0;
        const double expected =
            linked ? 1.0 / static_cast<double>(1 + std::max(neighbours[i].size(), neighbours[j].size())) : 0.0;
        if (i != j) {
          CHECK(m[i][j] == expected);
          CHECK(m[i][j] == m[j][i]);
          off += m[i][j];
        }
      }
      CHECK(m[i][i] == doctest::Approx(1.0 - off).epsilon(1e-15));
      CHECK(m[i][i] >= 0.0);
    }
    CHECK(g.max_degree() == most);  // König: max degree permutations suffice
    CHECK(g.round(0).permutations.size() == most);
  }
}

TEST_CASE("from_edges rejects self loops, unknown ranks and disconnected graphs, merges duplicates")
{
  const edge_list self_loop{{0, 1}, {1, 1}};
  const edge_list outside{{0, 1}, {1, 4}};
  const edge_list split{{0, 1}, {2, 3}};
  CHECK(rejects([&] { (void)tp::from_edges(4, self_loop); }));
  CHECK(rejects([&] { (void)tp::from_edges(4, outside); }));
  CHECK(rejection([&] { (void)tp::from_edges(4, split); }).find("disconnected") != std::string::npos);
  const edge_list twice{{0, 1}, {1, 0}, {1, 2}, {0, 1}};
  CHECK(tp::from_edges(3, twice).round(0).dense() == tp::from_edges(3, edge_list{{0, 1}, {1, 2}}).round(0).dense());
  check_graph(tp::from_edges(1, edge_list{}));
  const edge_list square{{0, 1}, {1, 2}, {2, 3}, {3, 0}};
  CHECK(tp::from_edges(4, square, tp::weighting::uniform).round(0).dense() == tp::ring(4).round(0).dense());
}

TEST_CASE("from_matrix validates weights, sums and support, naming the rank and the sum")
{
  const matrix good{{0.5, 0.5, 0.0}, {0.25, 0.5, 0.25}, {0.25, 0.0, 0.75}};
  const tp::graph g = tp::from_matrix(good, tp::stochasticity::doubly);
  CHECK(g.round(0).dense() == good);
  CHECK(g.directed());  // M[2][0] > 0 but M[0][2] == 0
  check_graph(g);

  matrix negative = good;
  negative[0][0] = 0.6;
  negative[0][1] = 0.5;
  negative[0][2] = -0.1;
  CHECK(rejection([&] { (void)tp::from_matrix(negative, tp::stochasticity::row); }).find("M[0][2]") !=
        std::string::npos);

  matrix heavy = good;
  heavy[1][1] = 0.6;  // row 1 sums to 1.1
  const std::string message = rejection([&] { (void)tp::from_matrix(heavy, tp::stochasticity::row); });
  CHECK(message.find("row 1") != std::string::npos);
  CHECK(message.find("1.1") != std::string::npos);
  CHECK(rejects([&] { (void)tp::from_matrix(heavy, tp::stochasticity::doubly); }));
  // ...and a column-stochastic claim fails on column 1 instead
  CHECK(rejection([&] { (void)tp::from_matrix(heavy, tp::stochasticity::column); }).find("column 1") !=
        std::string::npos);

  const matrix row_only{{0.5, 0.5}, {0.1, 0.9}};
  (void)tp::from_matrix(row_only, tp::stochasticity::row);
  CHECK(rejection([&] { (void)tp::from_matrix(row_only, tp::stochasticity::doubly); }).find("column 0") !=
        std::string::npos);
  const matrix disconnected{{1.0, 0.0}, {0.0, 1.0}};
  CHECK(rejects([&] { (void)tp::from_matrix(disconnected, tp::stochasticity::doubly); }));
  const matrix ragged{{0.5, 0.5}, {1.0}};
  CHECK(rejects([&] { (void)tp::from_matrix(ragged, tp::stochasticity::row); }));
  CHECK(rejects([&] { (void)tp::from_matrix(matrix{}, tp::stochasticity::row); }));
  const matrix not_a_number{{std::nan(""), 1.0}, {0.5, 0.5}};
  CHECK(rejects([&] { (void)tp::from_matrix(not_a_number, tp::stochasticity::row); }));
  CHECK_FALSE(tp::from_matrix(matrix{{0.5, 0.5}, {0.5, 0.5}}, tp::stochasticity::doubly).directed());
}

TEST_CASE("validation rejects non-injective permutations, self sends and asymmetric weights")
{
  namespace td = terse::topology::detail;
  tp::mixing_round round{3, {0.5, 0.5, 1.0}, {tp::permutation{{2, 2, -1}, {0.5, 0.5, 0.0}}}};
  CHECK(rejection([&] { td::validate_round(round, tp::stochasticity::row, false, "test"); }).find("already receives") !=
        std::string::npos);
  round.permutations[0].send_to = {0, -1, -1};
  CHECK(rejection([&] { td::validate_round(round, tp::stochasticity::row, false, "test"); }).find("itself") !=
        std::string::npos);
  // 0 -> 1 at 0.5, 1 -> 0 at 0.25: rows sum to 1 but the weights are not symmetric
  round = tp::mixing_round{2, {0.75, 0.5}, {tp::permutation{{1, 0}, {0.5, 0.25}}}};
  td::validate_round(round, tp::stochasticity::row, false, "test");
  CHECK(rejects([&] { td::validate_round(round, tp::stochasticity::row, true, "test"); }));
  CHECK(rejects([&] { td::validate_round(round, tp::stochasticity::doubly, false, "test"); }));
}

TEST_CASE("directed: column-stochastic push-sum splits and row-stochastic averaging")
{
  edge_list arcs;
  for (int i = 0; i < 8; ++i) {
    arcs.emplace_back(i, (i + 1) % 8);
    if (i % 2 == 0) {
      arcs.emplace_back(i, (i + 3) % 8);
    }
  }
  const tp::graph push = tp::directed(8, arcs);
  CHECK(push.kind() == tp::stochasticity::column);
  CHECK(push.directed());
  check_graph(push);
  const matrix m = push.round(0).dense();
  CHECK(m[1][0] == doctest::Approx(1.0 / 3.0));  // rank 0 splits over itself, 1 and 3
  CHECK(m[3][0] == doctest::Approx(1.0 / 3.0));
  CHECK(m[2][1] == 0.5);  // rank 1 splits over itself and 2
  bool some_row_off = false;
  for (const auto& row : m) {
    double sum = 0.0;
    for (double v : row) {
      sum += v;
    }
    some_row_off = some_row_off || std::abs(sum - 1.0) > 1e-3;
  }
  CHECK(some_row_off);  // not doubly stochastic: push-sum is needed

  // Push-sum: values and weights both pushed; their ratio reaches the mean.
  std::vector<double> x{3, -1, 4, 1, -5, 9, 2, 6};
  double mean = 0.0;
  for (double v : x) {
    mean += v / 8.0;
  }
  matrix values(8, std::vector<double>(2, 1.0));
  for (std::size_t i = 0; i < 8; ++i) {
    values[i][0] = x[i];
  }
  for (int t = 0; t < 400; ++t) {
    values = topology_checks::apply(m, values);
  }
  for (const auto& v : values) {
    CHECK(v[0] / v[1] == doctest::Approx(mean).epsilon(1e-12));
  }

  // Row-stochastic: X <- M X converges to 1 pi^T x0 with pi the left Perron vector.
  const tp::graph average = tp::directed(8, arcs, tp::stochasticity::row);
  check_graph(average);
  const matrix r = average.round(0).dense();
  const std::vector<double> pi = terse::topology::detail::left_perron_vector(r);
  double limit = 0.0;
  for (std::size_t i = 0; i < 8; ++i) {
    CHECK(pi[i] > 0.0);
    limit += pi[i] * x[i];
  }
  CHECK(std::abs(limit - mean) > 1e-3);  // a weighted mean, not the mean
  matrix state(8, std::vector<double>(1));
  for (std::size_t i = 0; i < 8; ++i) {
    state[i][0] = x[i];
  }
  for (int t = 0; t < 400; ++t) {
    state = topology_checks::apply(r, state);
  }
  for (const auto& v : state) {
    CHECK(v[0] == doctest::Approx(limit).epsilon(1e-12));
  }

  CHECK(rejects([] { (void)tp::directed(3, edge_list{{0, 1}, {1, 2}}); }));  // 2 reaches nobody
  CHECK(rejects([&] { (void)tp::directed(8, arcs, tp::stochasticity::doubly); }));
  CHECK(rejects([] { (void)tp::directed(2, edge_list{{0, 0}, {0, 1}, {1, 0}}); }));
  CHECK(rejects([] { (void)tp::directed(2, edge_list{{0, 2}}); }));
  CHECK_FALSE(tp::directed(2, edge_list{{0, 1}, {1, 0}}).directed());
}

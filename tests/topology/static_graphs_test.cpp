// Static topologies: every built-in graph is a valid plan for every W it
// accepts, rejects the W it cannot build, and has the neighbours it claims.
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "topology_checks.hpp"

namespace {

namespace tp = terse::topology;
using topology_checks::check_graph;
using topology_checks::rejects;

bool is_prime(int n)
{
  if (n < 2) {
    return false;
  }
  for (int d = 2; d * d <= n; ++d) {
    if (n % d == 0) {
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("every built-in topology is valid for every W it accepts, 1 to 64")
{
  for (int w = 1; w <= 64; ++w) {
    CAPTURE(w);
    check_graph(tp::ring(w));
    check_graph(tp::ring(w, tp::weighting::metropolis_hastings));
    check_graph(tp::exponential(w));
    check_graph(tp::complete(w));
    check_graph(tp::star(w));
    check_graph(tp::binary_tree(w));
    check_graph(tp::one_peer_exponential(w));
    check_graph(tp::one_peer_exact(w));
    check_graph(tp::random_matchings(w, 7));
    if (w == 1 || !is_prime(w)) {
      check_graph(tp::torus(w));
    } else {
      CHECK(rejects([w] { (void)tp::torus(w); }));
    }
    if (std::has_single_bit(static_cast<unsigned>(w))) {
      check_graph(tp::hypercube(w));
    } else {
      CHECK(rejects([w] { (void)tp::hypercube(w); }));
    }
    for (int rows = 1; rows <= w; ++rows) {
      if (w % rows == 0) {
        check_graph(tp::torus(rows, w / rows));
      }
    }
  }
}

TEST_CASE("builders reject the W they cannot build, naming the constraint")
{
  CHECK(rejects([] { (void)tp::hypercube(6); }));
  CHECK(rejects([] { (void)tp::torus(7); }));
  CHECK(rejects([] { (void)tp::torus(13); }));
  CHECK(topology_checks::rejection([] { (void)tp::torus(13); }).find("W is prime") != std::string::npos);
  CHECK(topology_checks::rejection([] { (void)tp::hypercube(6); }).find("power of two") != std::string::npos);
  CHECK(rejects([] { (void)tp::torus(0, 3); }));
  for (const std::function<void()>& build : std::vector<std::function<void()>>{
           [] { (void)tp::ring(0); }, [] { (void)tp::exponential(-1); }, [] { (void)tp::complete(0); },
           [] { (void)tp::star(0); }, [] { (void)tp::binary_tree(0); }, [] { (void)tp::one_peer_exact(0); },
           [] { (void)tp::one_peer_exponential(0); }, [] { (void)tp::random_matchings(0, 1); }}) {
    CHECK(rejects(build));
  }
  // uniform weights need a regular graph
  CHECK(rejects([] { (void)tp::star(3, tp::weighting::uniform); }));
  CHECK(rejects([] { (void)tp::binary_tree(4, tp::weighting::uniform); }));
  check_graph(tp::star(2, tp::weighting::uniform));
}

TEST_CASE("ring: 1/3 on self and both neighbours, W = 2 has one neighbour at 1/2")
{
  const auto m = tp::ring(5).round(0).dense();
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 5; ++j) {
      const int d = (j - i + 5) % 5;
      CHECK(m[i][j] == (d == 0 || d == 1 || d == 4 ? doctest::Approx(1.0 / 3.0).epsilon(1e-15) : 0.0));
    }
  }
  CHECK(tp::ring(2).round(0).dense() == std::vector<std::vector<double>>{{0.5, 0.5}, {0.5, 0.5}});
  CHECK(tp::ring(1).round(0).dense() == std::vector<std::vector<double>>{{1.0}});
  CHECK(tp::ring(1).round(0).permutations.empty());
  CHECK(tp::ring(8).max_degree() == 2);
  CHECK_FALSE(tp::ring(8).directed());
  CHECK_FALSE(tp::ring(8).time_varying());
  CHECK(tp::ring(8).period() == 1);
  CHECK(tp::ring(8).name() == "ring");
}

TEST_CASE("torus: four neighbours, de-duplicated along short dimensions, torus(W) is the most square")
{
  const auto degree = [](const tp::graph& g) { return g.round(0).permutations.size(); };
  CHECK(degree(tp::torus(4, 4)) == 4);
  CHECK(degree(tp::torus(2, 3)) == 3);
  CHECK(degree(tp::torus(2, 2)) == 2);
  CHECK(degree(tp::torus(1, 5)) == 2);
  CHECK(tp::torus(1, 5).round(0).dense() == tp::ring(5).round(0).dense());
  CHECK(tp::torus(16).round(0).dense() == tp::torus(4, 4).round(0).dense());
  CHECK(tp::torus(12).round(0).dense() == tp::torus(3, 4).round(0).dense());
  const auto m = tp::torus(3, 4).round(0).dense();
  // rank 5 = (1, 1): neighbours (0, 1), (2, 1), (1, 0), (1, 2)
  for (int j : {1, 9, 4, 6, 5}) {
    CHECK(m[5][static_cast<std::size_t>(j)] == doctest::Approx(0.2).epsilon(1e-15));
  }
}

TEST_CASE("exponential: r sends to r + 2^k, weight 1/(ceil(log2 W) + 1), doubly stochastic though directed")
{
  const tp::graph g = tp::exponential(6);
  CHECK(g.directed());
  CHECK(g.max_degree() == 3);
  const auto m = g.round(0).dense();
  for (int r = 0; r < 6; ++r) {
    for (int s = 0; s < 6; ++s) {
      const int d = (s - r + 6) % 6;  // r sends to s
      const bool arc = d == 0 || d == 1 || d == 2 || d == 4;
      CHECK(m[static_cast<std::size_t>(s)][static_cast<std::size_t>(r)] == (arc ? 0.25 : 0.0));
    }
  }
  CHECK_FALSE(tp::exponential(2).directed());
}

TEST_CASE("complete, star, binary tree and hypercube weights")
{
  for (const auto& row : tp::complete(7).round(0).dense()) {
    for (double v : row) {
      CHECK(v == doctest::Approx(1.0 / 7.0).epsilon(1e-15));
    }
  }
  const auto star = tp::star(5).round(0).dense();  // MH: hub degree 4
  CHECK(star[0][0] == doctest::Approx(0.2));
  CHECK(star[0][3] == doctest::Approx(0.2));
  CHECK(star[3][3] == doctest::Approx(0.8));
  CHECK(star[3][1] == 0.0);
  CHECK(tp::star(5).max_degree() == 4);
  const auto tree = tp::binary_tree(5).round(0).dense();  // degrees 2, 3, 1, 1, 1
  CHECK(tree[0][1] == doctest::Approx(0.25));
  CHECK(tree[1][3] == doctest::Approx(0.25));
  CHECK(tree[0][2] == doctest::Approx(1.0 / 3.0));
  CHECK(tree[0][0] == doctest::Approx(1.0 - 0.25 - 1.0 / 3.0));
  CHECK(tree[2][3] == 0.0);
  const auto cube = tp::hypercube(8).round(0).dense();
  for (int r = 0; r < 8; ++r) {
    for (int s = 0; s < 8; ++s) {
      const bool linked = std::has_single_bit(static_cast<unsigned>(r ^ s)) || r == s;
      CHECK(cube[static_cast<std::size_t>(r)][static_cast<std::size_t>(s)] == (linked ? 0.25 : 0.0));
    }
  }
}

TEST_CASE("graphs are values: copies and epochs share the plan")
{
  const tp::graph g = tp::torus(4, 4);
  const tp::graph copy = g;  // NOLINT(performance-unnecessary-copy-initialization)
  CHECK(copy.round(0).dense() == g.round(0).dense());
  const tp::graph later = g.with_epoch(3);
  CHECK(later.epoch() == 3);
  CHECK(g.epoch() == 0);
  CHECK(later.round(0).dense() == g.round(0).dense());
  CHECK(later.plan_hash(0) != g.plan_hash(0));
}

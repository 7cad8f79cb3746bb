// Planned topologies and clusters as pure functions: valid, connected,
// slow links left out, stable under measurement noise, deterministic.
#include <terse/topology/planner.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "topology_checks.hpp"

namespace {

namespace tp = terse::topology;
using topology_checks::check_graph;
using topology_checks::rejects;

constexpr double fast_nic = 10e9 / 8;  // 10 Gb/s
constexpr double slow_nic = 1e9 / 8;   // 1 Gb/s

/// Every link runs at the slower of its two ends' NICs; `scale(i, j)` adds
/// measurement noise.
template <class Noise>
tp::measurements nic_measurements(int world, const std::vector<int>& slow, Noise scale)
{
  tp::measurements m = tp::measurements::unknown(world);
  const auto nic = [&](int r) { return std::count(slow.begin(), slow.end(), r) != 0 ? slow_nic : fast_nic; };
  for (int i = 0; i < world; ++i) {
    m.step_seconds[static_cast<std::size_t>(i)] = 0.01 * scale(i, i);
    for (int j = 0; j < world; ++j) {
      if (i != j) {
        m.link_bytes_per_s[static_cast<std::size_t>(i * world + j)] = std::min(nic(i), nic(j)) * scale(i, j);
      }
    }
  }
  return m;
}

tp::measurements nic_measurements(int world, const std::vector<int>& slow)
{
  return nic_measurements(world, slow, [](int, int) { return 1.0; });
}

/// Arcs of the (static) graph with `slow` at an end, and whether it is connected.
int arcs_touching(const tp::graph& g, const std::vector<int>& slow)
{
  const auto m = g.round(0).dense();
  int count = 0;
  for (int i = 0; i < g.world(); ++i) {
    for (int j = 0; j < g.world(); ++j) {
      const bool touches = std::count(slow.begin(), slow.end(), i) + std::count(slow.begin(), slow.end(), j) > 0;
      count += i != j && touches && m[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] > 0.0 ? 1 : 0;
    }
  }
  return count;
}

bool connected(const tp::graph& g)
{
  const auto m = g.round(0).dense();
  const auto w = m.size();
  std::vector<char> seen(w, 0);
  std::vector<std::size_t> stack{0};
  seen[0] = 1;
  while (!stack.empty()) {
    const std::size_t r = stack.back();
    stack.pop_back();
    for (std::size_t j = 0; j < w; ++j) {
      if (m[r][j] > 0.0 && seen[j] == 0) {
        seen[j] = 1;
        stack.push_back(j);
      }
    }
  }
  return std::count(seen.begin(), seen.end(), 1) == static_cast<std::ptrdiff_t>(w);
}

}  // namespace

TEST_CASE("two slow ranks of eight: the plan leaves their extra links out, stays valid and connected")
{
  const std::vector<int> slow{3, 7};
  const tp::plan p = tp::plan_topology(nic_measurements(8, slow), {}, 5, 1);
  check_graph(p.topology);
  CHECK(connected(p.topology));
  CHECK(p.topology.epoch() == 1);
  CHECK(p.rho < 1.0);
  CHECK(p.rho == p.topology.rho());
  // Each slow rank hangs off a fast one by one edge (2 arcs), against the
  // ring's two edges each: half the bytes on 1 Gb/s links.
  CHECK(arcs_touching(p.topology, slow) == 4);
  CHECK(arcs_touching(tp::ring(8), slow) == 8);
  const auto m = p.topology.round(0).dense();
  for (const auto& [i, j] : p.edges) {
    CHECK_FALSE((i == 3 && j == 7));  // never slow to slow
    if (i == 3 || i == 7 || j == 3 || j == 7) {
      // The slow edge carries at least its Metropolis-Hastings weight, 1/(1 + the fast end's degree).
      const int fast = i == 3 || i == 7 ? j : i;
      int degree = 0;
      for (std::size_t k = 0; k < m.size(); ++k) {
        degree += static_cast<int>(k) != fast && m[static_cast<std::size_t>(fast)][k] > 0.0 ? 1 : 0;
      }
      CHECK(m[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] >= 1.0 / (1 + degree));
    }
  }
  // Heavier slow edges are chosen only when they mix faster.
  CHECK(p.rho <= tp::from_edges(8, p.edges).rho() + 1e-12);
  // Fast ranks get more edges than the ring's two (degree 3 by default).
  std::size_t fast_edges = 0;
  for (const auto& [i, j] : p.edges) {
    fast_edges += (i != 3 && i != 7 && j != 3 && j != 7) ? 1 : 0;
  }
  CHECK(fast_edges >= 8);
}

TEST_CASE("plans are pure: the same inputs give the same bits, noise within the class ratio changes nothing")
{
  const std::vector<int> slow{1, 6};
  const tp::measurements m = nic_measurements(8, slow);
  const tp::plan a = tp::plan_topology(m, {}, 9, 4);
  const tp::plan b = tp::plan_topology(m, {}, 9, 4);
  CHECK(a.edges == b.edges);
  CHECK(a.topology.plan_hash(0) == b.topology.plan_hash(0));
  CHECK(a.topology.round(0).dense() == b.topology.round(0).dense());
  const tp::measurements noisy =
      nic_measurements(8, slow, [](int i, int j) { return 1.0 + 0.03 * ((i * 5 + j * 3) % 7); });
  CHECK(tp::plan_topology(noisy, {}, 9, 4).edges == a.edges);
  // Another epoch is another plan name, even where the edges agree.
  CHECK(tp::plan_topology(m, {}, 9, 5).topology.plan_hash(0) != a.topology.plan_hash(0));
}

TEST_CASE("plans for every W up to 24, with and without slow ranks or stragglers, are valid and connected")
{
  for (int w = 1; w <= 24; ++w) {
    CAPTURE(w);
    for (const std::vector<int>& slow : {std::vector<int>{}, std::vector<int>{0}, std::vector<int>{0, w / 2, w - 1}}) {
      tp::measurements m = nic_measurements(w, slow);
      m.step_seconds[static_cast<std::size_t>(w / 3)] *= 5.0;  // a straggler
      const tp::plan p = tp::plan_topology(m, {.degree = 3}, 1, 2);
      check_graph(p.topology);
      CHECK(connected(p.topology));
      CHECK(p.edges.size() >= static_cast<std::size_t>(w - 1));
      if (w > 1) {
        CHECK(p.rho < 1.0);
      }
    }
  }
  // Nothing measured at all still plans a connected graph.
  const tp::plan blind = tp::plan_topology(tp::measurements::unknown(6), {}, 1, 1);
  CHECK(connected(blind.topology));
}

TEST_CASE("bad measurements and options are refused, naming what is wrong")
{
  tp::measurements m = nic_measurements(4, {});
  m.link_bytes_per_s[1] = std::nan("");
  CHECK(rejects([&] { (void)tp::plan_topology(m, {}, 1, 1); }));
  m = nic_measurements(4, {});
  m.step_seconds[2] = -1.0;
  CHECK(rejects([&] { (void)tp::plan_topology(m, {}, 1, 1); }));
  m.step_seconds.pop_back();
  CHECK(rejects([&] { (void)tp::plan_topology(m, {}, 1, 1); }));
  CHECK(rejects([] { (void)tp::plan_topology(nic_measurements(4, {}), {.class_ratio = 1.0}, 1, 1); }));
  CHECK(rejects([] { (void)tp::clusters_from({0, 2, 2}); }));
}

TEST_CASE("cluster_by_speed groups the slow ranks apart; cluster 0 is the fastest")
{
  const tp::clustering c = tp::cluster_by_speed(nic_measurements(8, {3, 7}), 2);
  CHECK(c.cluster_of == std::vector<int>{0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(c.sizes == std::vector<int>{6, 2});
  CHECK(c.leaders == std::vector<int>{0, 3});
  tp::measurements m = nic_measurements(8, {});
  m.step_seconds[5] = 0.08;  // a compute straggler
  m.step_seconds[2] = 0.03;
  const tp::clustering three = tp::cluster_by_speed(m, 3);
  CHECK(three.cluster_of == std::vector<int>{0, 0, 1, 0, 0, 2, 0, 0});
}

TEST_CASE("the clustered round is symmetric, doubly stochastic and keeps the mean for unequal sizes")
{
  const tp::clustering c = tp::clusters_from({1, 2, 2, 2, 0, 0, 0, 0});  // sizes 4, 1, 3
  for (const tp::leader_links links : {tp::leader_links::complete, tp::leader_links::ring}) {
    const tp::graph g = tp::clustered_graph(c, links);
    check_graph(g);
    CHECK(g.rho() < 1e-12);  // three clusters: every leader is linked, one round is the mean
  }
  const tp::clustering five = tp::clusters_from({0, 1, 2, 3, 4, 4, 3, 0});
  const tp::graph ring = tp::clustered_graph(five, tp::leader_links::ring);
  check_graph(ring);
  CHECK(connected(ring));
  CHECK(ring.rho() > 0.1);
  CHECK(ring.rho() < 1.0);
  CHECK(tp::clustered_graph(five, tp::leader_links::complete).rho() < 1e-12);
}

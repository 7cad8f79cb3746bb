// RelaySum on trees: rank i holds the exact mean after exactly ecc(i)
// steps and not before, on a binary tree of 15 and on random trees; the
// model update converges to the mean; graphs that are not trees are refused.
#include <terse/collective/relaysum.hpp>
#include <terse/topology.hpp>
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <random>
#include <utility>
#include <vector>

namespace {

std::vector<std::vector<int>> adjacency(int world, const std::vector<std::pair<int, int>>& edges)
{
  std::vector<std::vector<int>> adjacent(static_cast<std::size_t>(world));
  for (const auto& [a, b] : edges) {
    adjacent[static_cast<std::size_t>(a)].push_back(b);
    adjacent[static_cast<std::size_t>(b)].push_back(a);
  }
  return adjacent;
}

// The longest shortest path from `from` (breadth-first).
int eccentricity(const std::vector<std::vector<int>>& adjacent, int from)
{
  std::vector<int> distance(adjacent.size(), -1);
  std::vector<int> queue{from};
  distance[static_cast<std::size_t>(from)] = 0;
  int farthest = 0;
  for (std::size_t head = 0; head < queue.size(); ++head) {
    const int r = queue[head];
    for (const int peer : adjacent[static_cast<std::size_t>(r)]) {
      if (distance[static_cast<std::size_t>(peer)] < 0) {
        distance[static_cast<std::size_t>(peer)] = distance[static_cast<std::size_t>(r)] + 1;
        farthest = std::max(farthest, distance[static_cast<std::size_t>(peer)]);
        queue.push_back(peer);
      }
    }
  }
  return farthest;
}

float value(int rank, std::size_t i)
{
  return static_cast<float>((static_cast<std::size_t>(rank) * 11 + i * 3) % 23);
}

// Runs steps with fixed values; checks every rank becomes exact at step
// ecc(i) (1-based) and not one step earlier, and stays exact afterwards.
void check_exact_at_eccentricity(int world, const std::vector<std::pair<int, int>>& edges)
{
  const auto adjacent = adjacency(world, edges);
  const terse::topology::graph tree = terse::topology::from_edges(world, edges);
  const std::size_t n = 37;
  std::vector<float> mean(n, 0.0f);
  for (std::size_t i = 0; i < n; ++i) {
    float sum = 0.0f;
    for (int r = 0; r < world; ++r) {
      sum += value(r, i);
    }
    mean[i] = sum / static_cast<float>(world);
  }
  int diameter = 0;
  for (int r = 0; r < world; ++r) {
    diameter = std::max(diameter, eccentricity(adjacent, r));
  }
  std::vector<int> exact_from(static_cast<std::size_t>(world), -1);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::relay_sum relay(t, n, tree);
    const int ecc = eccentricity(adjacent, t.rank());
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = value(t.rank(), i);
    }
    std::vector<float> out(n);
    for (int step = 1; step <= diameter + 2; ++step) {
      relay.relay(terse::host_span<const float>(x), terse::host_span<float>(out));
      if (relay.covered() == world && exact_from[static_cast<std::size_t>(t.rank())] < 0) {
        exact_from[static_cast<std::size_t>(t.rank())] = step;
      }
      if (step >= ecc) {
        CHECK(relay.covered() == world);
        CHECK(out == mean);
      } else {
        CHECK(relay.covered() < world);
      }
    }
  });
  for (int r = 0; r < world; ++r) {
    CHECK(exact_from[static_cast<std::size_t>(r)] == eccentricity(adjacent, r));
  }
}

}  // namespace

TEST_CASE("RelaySum on a binary tree of 15: exact after ecc(i) steps (3 at the root, 6 at the leaves), not before")
{
  std::vector<std::pair<int, int>> edges;
  for (int r = 1; r < 15; ++r) {
    edges.emplace_back((r - 1) / 2, r);
  }
  const auto adjacent = adjacency(15, edges);
  CHECK(eccentricity(adjacent, 0) == 3);
  CHECK(eccentricity(adjacent, 14) == 6);
  check_exact_at_eccentricity(15, edges);
}

TEST_CASE("RelaySum on random trees: exact after ecc(i) steps, not before")
{
  std::mt19937 gen(2021);
  for (const int world : {2, 7, 12}) {
    std::vector<std::pair<int, int>> edges;
    for (int r = 1; r < world; ++r) {
      edges.emplace_back(std::uniform_int_distribution<int>(0, r - 1)(gen), r);
    }
    CAPTURE(world);
    check_exact_at_eccentricity(world, edges);
  }
}

TEST_CASE("RelaySum/Model: the mix update brings every replica to one value inside the inputs' range")
{
  // Not to the mean: while counts are incomplete a rank stands in its own
  // value for the missing ones, which weights near ranks more (relay() is
  // the exact average).
  const int world = 9;
  const terse::topology::graph tree = terse::topology::binary_tree(world);
  std::vector<std::vector<float>> finals(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::relay_sum relay(t, 5, tree);
    std::vector<float> x(5);
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = value(t.rank(), i);
    }
    for (int step = 0; step < 300; ++step) {
      relay.mix(terse::host_span<float>(x));
    }
    finals[static_cast<std::size_t>(t.rank())] = x;
  });
  for (std::size_t i = 0; i < 5; ++i) {
    float low = value(0, i);
    float high = low;
    for (int r = 0; r < world; ++r) {
      low = std::min(low, value(r, i));
      high = std::max(high, value(r, i));
    }
    for (int r = 0; r < world; ++r) {
      CHECK(finals[static_cast<std::size_t>(r)][i] == doctest::Approx(finals[0][i]).epsilon(1e-5));
      CHECK(finals[static_cast<std::size_t>(r)][i] >= low);
      CHECK(finals[static_cast<std::size_t>(r)][i] <= high);
    }
  }
}

TEST_CASE("RelaySum refuses graphs that are not trees")
{
  terse::run_local(6, [&](terse::local_transport& t) {
    CHECK_THROWS_AS(terse::relay_sum(t, 4, terse::topology::ring(6)), terse::error);
    CHECK_THROWS_AS(terse::relay_sum(t, 4, terse::topology::binary_tree(5)), terse::error);
    const std::vector<std::pair<int, int>> forest{{0, 1}, {2, 3}, {3, 4}, {4, 5}, {1, 0}};
    CHECK_THROWS_AS(terse::relay_sum(t, 4, terse::topology::from_edges(6, {forest.data(), 4})), terse::error);
  });
}

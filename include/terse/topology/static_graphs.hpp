#pragma once
/// @file
/// Static topologies: the same mixing matrix every round. Each builder
/// validates its weights and raises errc::invalid_argument, naming the
/// constraint, when it cannot be built for W; W = 1 always works (one rank,
/// self weight 1). Doubly stochastic unless noted.

#include <terse/topology/detail/build.hpp>
#include <terse/topology/detail/user_graphs.hpp>
#include <terse/topology/graph.hpp>

#include <bit>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace terse::topology {

namespace detail {
/// A regular graph whose neighbours are offsets (shift or xor): every arc and
/// self weighs 1/(d+1), which is also what Metropolis-Hastings gives.
template <class Target>
graph offset_graph(std::string name, int world, std::size_t degree, Target target, bool directed = false)
{
  const double w = 1.0 / static_cast<double>(degree + 1);
  std::vector<mixing_round> rounds{round_from_offsets(world, degree, target, w, w)};
  return graph(make_precomputed(std::move(name), stochasticity::doubly, directed, !directed, std::move(rounds)));
}

inline graph undirected_graph(std::string name, int world, const std::vector<std::pair<int, int>>& edges, weighting how)
{
  const adjacency neighbours = undirected_adjacency(world, edges, name);
  std::vector<mixing_round> rounds{undirected_round(neighbours, how, name)};
  return graph(make_precomputed(std::move(name), stochasticity::doubly, false, true, std::move(rounds)));
}
}  // namespace detail

/// Bidirectional ring: r talks to r +- 1 (one neighbour when W = 2), 1/3 each.
inline graph ring(int W, weighting /*regular: both weightings agree*/ = weighting::uniform)
{
  detail::expect_world(W, "ring");
  const std::size_t degree = W == 1 ? 0 : W == 2 ? 1 : 2;
  return detail::offset_graph("ring", W, degree, [W](int r, std::size_t k) { return (r + (k == 0 ? 1 : W - 1)) % W; });
}

/// rows x cols torus with wrap-around, up to 4 neighbours: a dimension of 2
/// has one neighbour along it, a dimension of 1 none.
inline graph torus(int rows, int cols, weighting /*regular: both weightings agree*/ = weighting::uniform)
{
  if (rows < 1 || cols < 1) {
    detail::reject("torus", "needs rows, cols >= 1, got " + std::to_string(rows) + " x " + std::to_string(cols));
  }
  std::vector<std::pair<int, int>> steps;  // (row step, column step)
  for (const auto& [extent, step] : {std::pair{rows, std::pair{1, 0}}, std::pair{cols, std::pair{0, 1}}}) {
    if (extent >= 2) {
      steps.push_back(step);
    }
    if (extent >= 3) {
      steps.emplace_back(-step.first, -step.second);
    }
  }
  return detail::offset_graph("torus", rows * cols, steps.size(), [rows, cols, steps](int r, std::size_t k) {
    const int i = (r / cols + steps[k].first + rows) % rows;
    const int j = (r % cols + steps[k].second + cols) % cols;
    return i * cols + j;
  });
}

/// The most square torus with W = rows x cols, rows <= cols, both >= 2.
inline graph torus(int W, weighting how = weighting::uniform)
{
  detail::expect_world(W, "torus");
  if (W == 1) {
    return torus(1, 1, how);
  }
  int rows = 1;
  for (int d = 2; d * d <= W; ++d) {
    if (W % d == 0) {
      rows = d;
    }
  }
  if (rows == 1) {
    detail::reject("torus", "a torus needs W = rows x cols with both >= 2; W is prime (W = " + std::to_string(W) + ")");
  }
  return torus(rows, W / rows, how);
}

/// Static exponential graph: r sends to r + 2^k mod W, k < ceil(log2 W),
/// all weights 1/(ceil(log2 W) + 1). Directed for W > 2, yet doubly
/// stochastic (the offsets 2^k < W are distinct, so no arcs coincide).
inline graph exponential(int W)
{
  detail::expect_world(W, "exponential");
  const auto degree = static_cast<std::size_t>(std::bit_width(static_cast<unsigned>(W - 1)));  // ceil(log2 W)
  return detail::offset_graph(
      "exponential", W, degree, [W](int r, std::size_t k) { return (r + (1 << k)) % W; }, W > 2);
}

/// Everyone with everyone, weight 1/W: M = J, rho = 0.
inline graph complete(int W)
{
  detail::expect_world(W, "complete");
  return detail::offset_graph("complete", W, static_cast<std::size_t>(W - 1),
                              [W](int r, std::size_t k) { return (r + static_cast<int>(k) + 1) % W; });
}

/// Hub 0 linked to every other rank.
inline graph star(int W, weighting how = weighting::metropolis_hastings)
{
  detail::expect_world(W, "star");
  std::vector<std::pair<int, int>> edges;
  for (int r = 1; r < W; ++r) {
    edges.emplace_back(0, r);
  }
  return detail::undirected_graph("star", W, edges, how);
}

/// Binary tree in heap order: the parent of i is (i - 1) / 2.
inline graph binary_tree(int W, weighting how = weighting::metropolis_hastings)
{
  detail::expect_world(W, "binary tree");
  std::vector<std::pair<int, int>> edges;
  for (int r = 1; r < W; ++r) {
    edges.emplace_back((r - 1) / 2, r);
  }
  return detail::undirected_graph("binary tree", W, edges, how);
}

/// log2 W dimensions: r talks to r xor 2^k.
inline graph hypercube(int W, weighting /*regular: both weightings agree*/ = weighting::uniform)
{
  detail::expect_world(W, "hypercube");
  if (!std::has_single_bit(static_cast<unsigned>(W))) {
    detail::reject("hypercube", "a hypercube needs W to be a power of two, got W = " + std::to_string(W));
  }
  const auto degree = static_cast<std::size_t>(std::countr_zero(static_cast<unsigned>(W)));
  return detail::offset_graph("hypercube", W, degree, [](int r, std::size_t k) { return r ^ (1 << k); });
}

/// A user's undirected graph (duplicate edges are merged); rejects self
/// loops, ranks outside [0, W) and disconnected graphs.
inline graph from_edges(int W, std::span<const std::pair<int, int>> undirected_edges,
                        weighting how = weighting::metropolis_hastings)
{
  detail::expect_world(W, "from_edges");
  return detail::undirected_graph("from_edges", W, {undirected_edges.begin(), undirected_edges.end()}, how);
}

/// A user's weights, M[i][j] = what receiver i gives sender j; the non-zero
/// entries define the edges. Rejects negative or non-finite entries, sums
/// that `kind` forbids (to 1e-12) and supports that are not strongly
/// connected.
inline graph from_matrix(std::vector<std::vector<double>> M, stochasticity kind)
{
  return graph(detail::build_from_matrix(std::move(M), kind));
}

/// Arc (i, j): i sends to j. column (push-sum): each sender splits uniformly
/// over itself and its out-neighbours; row: each receiver averages uniformly
/// over itself and its in-neighbours. Rejects arcs that are not strongly
/// connected, and stochasticity::doubly.
inline graph directed(int W, std::span<const std::pair<int, int>> arcs, stochasticity kind = stochasticity::column)
{
  return graph(detail::build_directed(W, {arcs.begin(), arcs.end()}, kind));
}

}  // namespace terse::topology

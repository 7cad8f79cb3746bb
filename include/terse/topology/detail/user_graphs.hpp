#pragma once
/// @file
/// The bodies of the user-supplied graphs (from_matrix, directed): checking
/// what a user hands in is most of the work, so it lives apart from the
/// built-in topologies.

#include <terse/topology/detail/build.hpp>
#include <terse/topology/round.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace terse::topology::detail {

inline bool symmetric_support(const adjacency& out, const adjacency& in)
{
  for (std::size_t r = 0; r < out.size(); ++r) {
    std::vector<int> a = out[r];
    std::vector<int> b = in[r];
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) {
      return false;
    }
  }
  return true;
}

inline std::shared_ptr<const graph_spec> build_from_matrix(std::vector<std::vector<double>> m, stochasticity kind)
{
  constexpr std::string_view name = "from_matrix";
  const std::size_t w = m.size();
  if (w == 0) {
    reject(name, "the matrix is empty; it needs one row per rank");
  }
  adjacency out(w), in(w);
  std::vector<edge> arcs;
  std::vector<double> self(w);
  for (std::size_t i = 0; i < w; ++i) {
    if (m[i].size() != w) {
      reject(name, "row " + std::to_string(i) + " has " + std::to_string(m[i].size()) +
                       " entries; the matrix must be " + std::to_string(w) + " x " + std::to_string(w));
    }
    for (std::size_t j = 0; j < w; ++j) {
      const double v = m[i][j];
      if (!(v >= 0.0) || !std::isfinite(v)) {
        reject(name, "M[" + std::to_string(i) + "][" + std::to_string(j) + "] = " + format_number(v) +
                         "; weights must be finite and non-negative");
      }
      if (i == j) {
        self[i] = v;
      } else if (v != 0.0) {  // the support defines the edges: j sends to i
        arcs.push_back({static_cast<int>(j), static_cast<int>(i), v});
        out[j].push_back(static_cast<int>(i));
        in[i].push_back(static_cast<int>(j));
      }
    }
  }
  if (!strongly_connected(out, in)) {
    reject(name, "the support is not strongly connected; gossip over it never reaches consensus");
  }
  const bool directed = !symmetric_support(out, in);
  std::vector<mixing_round> rounds{round_from_arcs(static_cast<int>(w), std::move(self), arcs)};
  return make_precomputed(std::string(name), kind, directed, false, std::move(rounds));
}

inline std::shared_ptr<const graph_spec> build_directed(int world, const std::vector<std::pair<int, int>>& given,
                                                        stochasticity kind)
{
  constexpr std::string_view name = "directed";
  expect_world(world, name);
  if (kind == stochasticity::doubly) {
    reject(name, "a uniform split is only column- or row-stochastic; use from_matrix for doubly stochastic weights");
  }
  const auto w = static_cast<std::size_t>(world);
  std::vector<std::pair<int, int>> arcs = given;
  for (const auto& [from, to] : arcs) {
    if (from < 0 || from >= world || to < 0 || to >= world) {
      reject(name, "arc (" + std::to_string(from) + ", " + std::to_string(to) + ") names a rank outside [0, " +
                       std::to_string(world) + ")");
    }
    if (from == to) {
      reject(name, "arc (" + std::to_string(from) + ", " + std::to_string(to) + ") is a self loop");
    }
  }
  std::sort(arcs.begin(), arcs.end());
  arcs.erase(std::unique(arcs.begin(), arcs.end()), arcs.end());
  adjacency out(w), in(w);
  for (const auto& [from, to] : arcs) {
    out[static_cast<std::size_t>(from)].push_back(to);
    in[static_cast<std::size_t>(to)].push_back(from);
  }
  if (!strongly_connected(out, in)) {
    reject(name, "the arcs are not strongly connected; gossip over them never reaches consensus");
  }
  // column: each sender splits over itself and its out-neighbours; row: each
  // receiver averages over itself and its in-neighbours.
  const bool by_sender = kind == stochasticity::column;
  std::vector<double> self(w);
  for (std::size_t r = 0; r < w; ++r) {
    self[r] = 1.0 / static_cast<double>((by_sender ? out[r] : in[r]).size() + 1);
  }
  std::vector<edge> weighted;
  for (const auto& [from, to] : arcs) {
    weighted.push_back({from, to, self[static_cast<std::size_t>(by_sender ? from : to)]});
  }
  const bool directed = !symmetric_support(out, in);
  std::vector<mixing_round> rounds{round_from_arcs(world, std::move(self), weighted)};
  return make_precomputed(std::string(name), kind, directed, false, std::move(rounds));
}

}  // namespace terse::topology::detail

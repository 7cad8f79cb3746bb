#pragma once
/// @file
/// topology::survivors: the graph a gossip collective runs once some ranks
/// are dead, over the survivors renumbered 0..n-1 in rank order (a pure
/// function of the dead set, so every survivor builds the same one).
///
/// - Static graphs keep the edges among survivors (both directions of every
///   arc of the round) with Metropolis–Hastings weights recomputed on the
///   surviving degrees: doubly stochastic, for every mixer.
/// - Where the survivors' edges do not connect them, backup edges are
///   switched on (if allowed): for each group of adjacent dead ranks, its
///   live neighbours are linked to the lowest-numbered one. On a ring that
///   is the second-nearest neighbours around a dead rank; on a tree in heap
///   order, a dead rank's children link to its parent (their grandparent).
/// - One-peer schedules (one-peer exponential, one-peer exact) are rebuilt
///   for n ranks; random matchings and other time-varying graphs raise
///   errc::unsupported.

#include <terse/core/error.hpp>
#include <terse/topology/detail/build.hpp>
#include <terse/topology/graph.hpp>
#include <terse/topology/time_varying.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace terse::topology {

struct survivor_graph {
  /// Over ranks.size() ranks; empty when partitioned.
  std::optional<graph> mixing;
  /// ranks[i]: the original rank of survivor i (ascending).
  std::vector<int> ranks;
  /// The survivors are not connected (even with backup edges, if allowed).
  bool partitioned = false;
  /// Backup edges were needed and switched on.
  bool backup_edges = false;
};

namespace detail {

/// Live neighbours of each group of adjacent dead ranks, linked to the group's
/// lowest-numbered live neighbour. Indices are original ranks.
inline std::vector<std::pair<int, int>> backup_links(const adjacency& full, const std::vector<char>& dead)
{
  std::vector<std::pair<int, int>> links;
  std::vector<char> seen(full.size(), 0);
  for (std::size_t start = 0; start < full.size(); ++start) {
    if (dead[start] == 0 || seen[start] != 0) {
      continue;
    }
    std::vector<int> stack{static_cast<int>(start)};
    std::vector<int> live;
    seen[start] = 1;
    while (!stack.empty()) {
      const int r = stack.back();
      stack.pop_back();
      for (int next : full[static_cast<std::size_t>(r)]) {
        const auto n = static_cast<std::size_t>(next);
        if (dead[n] == 0) {
          live.push_back(next);
        } else if (seen[n] == 0) {
          seen[n] = 1;
          stack.push_back(next);
        }
      }
    }
    std::sort(live.begin(), live.end());
    live.erase(std::unique(live.begin(), live.end()), live.end());
    for (std::size_t k = 1; k < live.size(); ++k) {
      links.emplace_back(live.front(), live[k]);
    }
  }
  return links;
}

}  // namespace detail

/// The graph over the survivors of `g` when the ranks in `dead` have failed.
/// `backup_edges`: switch on backup edges where the survivors would be
/// partitioned. The epoch is g's plus one, so plan hashes differ from g's.
inline survivor_graph survivors(const graph& g, std::span<const int> dead, bool backup_edges = true)
{
  const int world = g.world();
  std::vector<char> is_dead(static_cast<std::size_t>(world), 0);
  for (int r : dead) {
    TERSE_EXPECTS(r >= 0 && r < world,
                  "dead rank " + std::to_string(r) + " is not a rank of a world of " + std::to_string(world));
    is_dead[static_cast<std::size_t>(r)] = 1;
  }
  survivor_graph out;
  std::vector<int> compact(static_cast<std::size_t>(world), -1);
  for (int r = 0; r < world; ++r) {
    if (is_dead[static_cast<std::size_t>(r)] == 0) {
      compact[static_cast<std::size_t>(r)] = static_cast<int>(out.ranks.size());
      out.ranks.push_back(r);
    }
  }
  const int n = static_cast<int>(out.ranks.size());
  TERSE_CHECK(n >= 1, errc::peer_failed, "every rank of the topology is dead");
  const std::uint64_t epoch = g.epoch() + 1;
  if (g.time_varying()) {
    if (g.name() == "one-peer exponential") {
      out.mixing = one_peer_exponential(n).with_epoch(epoch);
    } else if (g.name() == "one-peer exact") {
      out.mixing = one_peer_exact(n).with_epoch(epoch);
    } else {
      TERSE_FAIL(errc::unsupported, "cannot reroute the time-varying topology '" + std::string(g.name()) +
                                        "' around failed ranks; use a static graph or a one-peer schedule");
    }
    return out;
  }
  // Static: the undirected support of the round, among survivors.
  const auto m = g.round(0).dense();
  detail::adjacency full(static_cast<std::size_t>(world));
  for (std::size_t i = 0; i < m.size(); ++i) {
    for (std::size_t j = 0; j < m.size(); ++j) {
      if (i != j && (m[i][j] != 0.0 || m[j][i] != 0.0)) {
        full[i].push_back(static_cast<int>(j));
      }
    }
  }
  detail::adjacency alive(static_cast<std::size_t>(n));
  const auto link = [&](int a, int b) {
    alive[static_cast<std::size_t>(compact[static_cast<std::size_t>(a)])].push_back(
        compact[static_cast<std::size_t>(b)]);
    alive[static_cast<std::size_t>(compact[static_cast<std::size_t>(b)])].push_back(
        compact[static_cast<std::size_t>(a)]);
  };
  for (int r : out.ranks) {
    for (int s : full[static_cast<std::size_t>(r)]) {
      if (is_dead[static_cast<std::size_t>(s)] == 0 && r < s) {
        link(r, s);
      }
    }
  }
  if (!detail::strongly_connected(alive, alive)) {
    if (!backup_edges) {
      out.partitioned = true;
      return out;
    }
    for (const auto& [a, b] : detail::backup_links(full, is_dead)) {
      link(a, b);
    }
    out.backup_edges = true;
  }
  for (auto& list : alive) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  if (!detail::strongly_connected(alive, alive)) {
    out.partitioned = true;
    return out;
  }
  std::string name = std::string(g.name()) + " survivors";
  std::vector<mixing_round> rounds{detail::undirected_round(alive, weighting::metropolis_hastings, name)};
  out.mixing =
      graph(detail::make_precomputed(std::move(name), stochasticity::doubly, false, true, std::move(rounds)), epoch);
  return out;
}

}  // namespace terse::topology

#pragma once
/// @file
/// Turns neighbour lists and weights into validated, precomputed graph
/// specs: the shared back end of every static graph and of the Base-2
/// schedule.

#include <terse/core/error.hpp>
#include <terse/topology/detail/edge_colouring.hpp>
#include <terse/topology/detail/graph_spec.hpp>
#include <terse/topology/detail/validate.hpp>
#include <terse/topology/round.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace terse::topology::detail {

using adjacency = std::vector<std::vector<int>>;

inline void expect_world(int world, std::string_view name)
{
  if (world < 1) {
    reject(name, "needs W >= 1, got W = " + std::to_string(world));
  }
}

/// Every rank's share of a round, in permutation order.
inline std::vector<rank_round> split_by_rank(const mixing_round& round)
{
  std::vector<rank_round> ranks(static_cast<std::size_t>(round.world));
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    ranks[r].self_weight = round.self_weight[r];
  }
  for (const permutation& p : round.permutations) {
    for (std::size_t r = 0; r < ranks.size(); ++r) {
      if (p.send_to[r] >= 0) {
        ranks[r].sends.push_back({p.send_to[r], p.weight[r]});
        ranks[static_cast<std::size_t>(p.send_to[r])].recvs.push_back({static_cast<int>(r), p.weight[r]});
      }
    }
  }
  return ranks;
}

/// Validates `rounds` and wraps them as a graph spec repeating with period
/// rounds.size().
inline std::shared_ptr<const graph_spec> make_precomputed(std::string name, stochasticity kind, bool directed,
                                                          bool symmetric, std::vector<mixing_round> rounds)
{
  auto spec = std::make_shared<graph_spec>();
  spec->world = rounds.front().world;
  std::uint64_t h = hash_combine(static_cast<std::uint64_t>(family::precomputed), static_cast<std::uint64_t>(kind));
  for (const mixing_round& round : rounds) {
    validate_round(round, kind, symmetric, name);
    h = hash_round(h, round);
    spec->by_rank.push_back(split_by_rank(round));
    for (const rank_round& r : spec->by_rank.back()) {
      spec->max_degree = std::max({spec->max_degree, r.sends.size(), r.recvs.size()});
    }
  }
  spec->source = family::precomputed;
  spec->name = std::move(name);
  spec->kind = kind;
  spec->directed = directed;
  spec->period = rounds.size();
  spec->weights_hash = h;
  spec->rounds = std::move(rounds);
  return spec;
}

/// A round with the given self weights whose arcs are split into permutations.
inline mixing_round round_from_arcs(int world, std::vector<double> self_weight, const std::vector<edge>& arcs)
{
  return mixing_round{world, std::move(self_weight), colour_arcs(world, arcs)};
}

/// A round of `count` permutations, r sending to target(r, k) in the k-th
/// (shifts and xors: rings, tori, hypercubes), every arc weighing `w`.
template <class Target>
mixing_round round_from_offsets(int world, std::size_t count, Target target, double w, double self)
{
  mixing_round round{world, std::vector<double>(static_cast<std::size_t>(world), self), {}};
  for (std::size_t k = 0; k < count; ++k) {
    permutation p{std::vector<int>(static_cast<std::size_t>(world)),
                  std::vector<double>(static_cast<std::size_t>(world), w)};
    for (int r = 0; r < world; ++r) {
      p.send_to[static_cast<std::size_t>(r)] = target(r, k);
    }
    round.permutations.push_back(std::move(p));
  }
  return round;
}

/// True when every rank reaches every other along `out` (and back along
/// `in`: pass the reverse lists for directed graphs, `out` again otherwise).
inline bool strongly_connected(const adjacency& out, const adjacency& in)
{
  for (const adjacency* lists : {&out, &in}) {
    std::vector<char> seen(lists->size(), 0);
    std::vector<int> stack{0};
    seen[0] = 1;
    std::size_t reached = 1;
    while (!stack.empty()) {
      const int r = stack.back();
      stack.pop_back();
      for (int next : (*lists)[static_cast<std::size_t>(r)]) {
        if (seen[static_cast<std::size_t>(next)] == 0) {
          seen[static_cast<std::size_t>(next)] = 1;
          ++reached;
          stack.push_back(next);
        }
      }
    }
    if (reached != lists->size()) {
      return false;
    }
  }
  return true;
}

/// Symmetric weights on an undirected graph given as sorted, de-duplicated
/// neighbour lists.
inline mixing_round undirected_round(const adjacency& neighbours, weighting how, std::string_view name)
{
  const int world = static_cast<int>(neighbours.size());
  const auto degree = [&](int r) { return neighbours[static_cast<std::size_t>(r)].size(); };
  if (how == weighting::uniform) {
    for (int r = 1; r < world; ++r) {
      if (degree(r) != degree(0)) {
        reject(name, "uniform weights need a regular graph, but rank 0 has " + std::to_string(degree(0)) +
                         " neighbours and rank " + std::to_string(r) + " has " + std::to_string(degree(r)) +
                         "; use weighting::metropolis_hastings");
      }
    }
  }
  std::vector<double> self(neighbours.size(), 1.0);
  std::vector<edge> arcs;
  for (int r = 0; r < world; ++r) {
    for (int s : neighbours[static_cast<std::size_t>(r)]) {
      const double w = how == weighting::uniform ? 1.0 / static_cast<double>(degree(r) + 1)
                                                 : 1.0 / static_cast<double>(1 + std::max(degree(r), degree(s)));
      arcs.push_back({s, r, w});
      self[static_cast<std::size_t>(r)] -= w;
    }
    if (how == weighting::uniform) {
      self[static_cast<std::size_t>(r)] = 1.0 / static_cast<double>(degree(r) + 1);  // exact, not 1 - d/(d+1)
    }
  }
  return round_from_arcs(world, std::move(self), arcs);
}

/// Sorted, de-duplicated neighbour lists of an undirected edge list;
/// rejects self loops, out-of-range ranks and disconnected graphs.
inline adjacency undirected_adjacency(int world, const std::vector<std::pair<int, int>>& edges, std::string_view name)
{
  adjacency neighbours(static_cast<std::size_t>(world));
  for (const auto& [a, b] : edges) {
    if (a < 0 || a >= world || b < 0 || b >= world) {
      reject(name, "edge (" + std::to_string(a) + ", " + std::to_string(b) + ") names a rank outside [0, " +
                       std::to_string(world) + ")");
    }
    if (a == b) {
      reject(name, "edge (" + std::to_string(a) + ", " + std::to_string(b) + ") is a self loop");
    }
    neighbours[static_cast<std::size_t>(a)].push_back(b);
    neighbours[static_cast<std::size_t>(b)].push_back(a);
  }
  for (auto& list : neighbours) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  if (!strongly_connected(neighbours, neighbours)) {
    reject(name, "the graph is disconnected; gossip over it never reaches the average");
  }
  return neighbours;
}

}  // namespace terse::topology::detail

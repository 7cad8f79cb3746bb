#pragma once
/// @file
/// The body of topology::plan_topology: speed classes from the agreed
/// measurements, then a degree-balanced greedy graph. Everything here is a
/// pure function of its inputs with integer keys and exactly rounded
/// arithmetic (products and quotients, no logarithms), so every rank that
/// holds the same measurements builds the same edges bit for bit.

#include <terse/topology/detail/build.hpp>
#include <terse/topology/detail/graph_spec.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numeric>
#include <tuple>
#include <utility>
#include <vector>

namespace terse::topology::detail {

/// Speeds within `ratio` of the best are class 0, within ratio^2 class 1,
/// and so on: how many times `slowness` (>= 1) reaches the next power of
/// `ratio`. Classes, not raw numbers, drive the plan, so measurement noise
/// smaller than a factor of `ratio` does not change it.
inline int speed_class(double slowness, double ratio) noexcept
{
  int k = 0;
  double bound = ratio;
  while (k < 64 && slowness >= bound) {
    ++k;
    bound *= ratio;
  }
  return k;
}

/// Symmetric link estimates from a possibly partial W x W table (0: not
/// measured): the slower direction where both were measured; otherwise the
/// slower of the two ends' best measured links (a rank's best link stands
/// for its NIC); 1 everywhere when nothing was measured.
inline std::vector<double> estimated_links(int world, const std::vector<double>& measured)
{
  const auto w = static_cast<std::size_t>(world);
  std::vector<double> best(w, 0.0);
  double overall = 0.0;
  for (std::size_t i = 0; i < w; ++i) {
    for (std::size_t j = 0; j < w; ++j) {
      const double b = i == j ? 0.0 : measured[i * w + j];
      best[i] = std::max(best[i], b);
      best[j] = std::max(best[j], b);
      overall = std::max(overall, b);
    }
  }
  if (overall == 0.0) {
    overall = 1.0;
  }
  for (double& b : best) {
    b = b == 0.0 ? overall : b;
  }
  std::vector<double> links(w * w, 0.0);
  for (std::size_t i = 0; i < w; ++i) {
    for (std::size_t j = 0; j < w; ++j) {
      if (i == j) {
        continue;
      }
      const double a = measured[i * w + j];
      const double b = measured[j * w + i];
      double v = a > 0.0 && b > 0.0 ? std::min(a, b) : std::max(a, b);
      links[i * w + j] = v > 0.0 ? v : std::min(best[i], best[j]);
    }
  }
  return links;
}

/// Unknown step times (0) become the slowest known one (1 if none).
inline std::vector<double> estimated_steps(std::vector<double> steps)
{
  double slowest = 0.0;
  for (double s : steps) {
    slowest = std::max(slowest, s);
  }
  for (double& s : steps) {
    s = s > 0.0 ? s : (slowest > 0.0 ? slowest : 1.0);
  }
  return steps;
}

/// The class of every edge: the larger of its link's class (against the
/// fastest link) and its two ends' step-time classes (against the fastest
/// rank), so an edge is as slow as the slowest thing it waits for.
struct edge_classes {
  int world = 0;
  std::vector<int> of_edge;  ///< W x W, symmetric
  std::vector<int> of_rank;  ///< the class of each rank's best edge

  int operator()(int i, int j) const noexcept
  {
    return of_edge[static_cast<std::size_t>(i) * static_cast<std::size_t>(world) + static_cast<std::size_t>(j)];
  }
};

inline edge_classes classify(int world, const std::vector<double>& links, const std::vector<double>& steps,
                             double ratio)
{
  const auto w = static_cast<std::size_t>(world);
  double fastest_link = 0.0;
  for (std::size_t k = 0; k < links.size(); ++k) {
    fastest_link = std::max(fastest_link, links[k]);
  }
  const double fastest_step = *std::min_element(steps.begin(), steps.end());
  std::vector<int> step_class(w);
  for (std::size_t i = 0; i < w; ++i) {
    step_class[i] = speed_class(steps[i] / fastest_step, ratio);
  }
  edge_classes c{world, std::vector<int>(w * w, 0), std::vector<int>(w, 1 << 20)};
  for (std::size_t i = 0; i < w; ++i) {
    for (std::size_t j = 0; j < w; ++j) {
      if (i == j) {
        continue;
      }
      const int link = speed_class(fastest_link / links[i * w + j], ratio);
      c.of_edge[i * w + j] = std::max({link, step_class[i], step_class[j]});
      c.of_rank[i] = std::min(c.of_rank[i], c.of_edge[i * w + j]);
    }
  }
  if (w == 1) {
    c.of_rank[0] = 0;
  }
  return c;
}

/// Breaks ties among equally good edges: a fixed function of (seed, epoch,
/// edge), so plans differ between seeds but never between ranks.
inline std::uint64_t edge_draw(std::uint64_t seed, std::uint64_t epoch, int i, int j) noexcept
{
  return hash_combine(hash_combine(hash_combine(seed, epoch), static_cast<std::uint64_t>(i)),
                      static_cast<std::uint64_t>(j));
}

/// The planned edges (i < j): a spanning tree that uses the fewest and
/// fastest slow edges, balanced in degree, then extra fast (class 0) edges
/// between ranks below `degree` neighbours.
inline std::vector<std::pair<int, int>> greedy_edges(const edge_classes& c, std::size_t degree, std::uint64_t seed,
                                                     std::uint64_t epoch)
{
  const int world = c.world;
  const auto w = static_cast<std::size_t>(world);
  std::vector<std::size_t> deg(w, 0);
  std::vector<int> component(w);
  std::iota(component.begin(), component.end(), 0);
  std::vector<char> taken(w * w, 0);
  std::vector<std::pair<int, int>> edges;
  const auto key = [&](int i, int j) {
    const std::size_t di = deg[static_cast<std::size_t>(i)];
    const std::size_t dj = deg[static_cast<std::size_t>(j)];
    return std::tuple{c(i, j), c.of_rank[static_cast<std::size_t>(i)] + c.of_rank[static_cast<std::size_t>(j)],
                      std::max(di, dj), di + dj, edge_draw(seed, epoch, i, j)};
  };
  const auto add = [&](int i, int j) {
    edges.emplace_back(i, j);
    ++deg[static_cast<std::size_t>(i)];
    ++deg[static_cast<std::size_t>(j)];
    taken[static_cast<std::size_t>(i) * w + static_cast<std::size_t>(j)] = 1;
  };
  // Phase 1: W - 1 joins of two components, the best edge each time (a
  // Kruskal over classes: no slow edge is used where a faster one joins the
  // same parts; the slow ranks' own best class decides which ends are
  // preferred; low degrees spread the tree into a path-like shape).
  for (int joins = 1; joins < world; ++joins) {
    int bi = -1;
    int bj = -1;
    for (int i = 0; i < world; ++i) {
      for (int j = i + 1; j < world; ++j) {
        if (component[static_cast<std::size_t>(i)] != component[static_cast<std::size_t>(j)] &&
            (bi < 0 || key(i, j) < key(bi, bj))) {
          bi = i;
          bj = j;
        }
      }
    }
    add(bi, bj);
    const int from = component[static_cast<std::size_t>(bj)];
    const int to = component[static_cast<std::size_t>(bi)];
    for (int& k : component) {
      k = k == from ? to : k;
    }
  }
  // Phase 2: fast edges only, while both ends have fewer than `degree`.
  for (;;) {
    int bi = -1;
    int bj = -1;
    for (int i = 0; i < world; ++i) {
      for (int j = i + 1; j < world; ++j) {
        if (taken[static_cast<std::size_t>(i) * w + static_cast<std::size_t>(j)] == 0 && c(i, j) == 0 &&
            deg[static_cast<std::size_t>(i)] < degree && deg[static_cast<std::size_t>(j)] < degree &&
            (bi < 0 || key(i, j) < key(bi, bj))) {
          bi = i;
          bj = j;
        }
      }
    }
    if (bi < 0) {
      return edges;
    }
    add(bi, bj);
  }
}

inline constexpr double slow_edge_boosts[] = {0.0, 0.25, 0.5, 0.75, 0.9};

inline bool has_slow_edge(const std::vector<std::pair<int, int>>& edges, const edge_classes& c)
{
  return std::any_of(edges.begin(), edges.end(), [&](const auto& e) { return c(e.first, e.second) > 0; });
}

/// Metropolis-Hastings weights on `edges`, each slow edge (class > 0) then
/// raised by boost x min over its ends of (self weight / that end's slow
/// edges): symmetric, doubly stochastic, self weights >= (1 - boost) x MH's.
inline std::shared_ptr<const graph_spec> planned_spec(int world, const std::vector<std::pair<int, int>>& edges,
                                                      const edge_classes& c, double boost)
{
  const auto w = static_cast<std::size_t>(world);
  std::vector<std::size_t> deg(w, 0), slow(w, 0);
  for (const auto& [i, j] : edges) {
    ++deg[static_cast<std::size_t>(i)];
    ++deg[static_cast<std::size_t>(j)];
    if (c(i, j) > 0) {
      ++slow[static_cast<std::size_t>(i)];
      ++slow[static_cast<std::size_t>(j)];
    }
  }
  std::vector<double> weight(edges.size());
  std::vector<double> self(w, 1.0);
  for (std::size_t e = 0; e < edges.size(); ++e) {
    const auto i = static_cast<std::size_t>(edges[e].first);
    const auto j = static_cast<std::size_t>(edges[e].second);
    weight[e] = 1.0 / static_cast<double>(1 + std::max(deg[i], deg[j]));
    self[i] -= weight[e];
    self[j] -= weight[e];
  }
  if (boost > 0.0) {
    const std::vector<double> mh_self = self;
    for (std::size_t e = 0; e < edges.size(); ++e) {
      const auto i = static_cast<std::size_t>(edges[e].first);
      const auto j = static_cast<std::size_t>(edges[e].second);
      if (c(edges[e].first, edges[e].second) > 0) {
        const double extra =
            boost * std::min(mh_self[i] / static_cast<double>(slow[i]), mh_self[j] / static_cast<double>(slow[j]));
        weight[e] += extra;
        self[i] -= extra;
        self[j] -= extra;
      }
    }
  }
  std::vector<edge> arcs;
  for (std::size_t e = 0; e < edges.size(); ++e) {
    arcs.push_back({edges[e].first, edges[e].second, weight[e]});
    arcs.push_back({edges[e].second, edges[e].first, weight[e]});
  }
  std::vector<mixing_round> rounds{round_from_arcs(world, std::move(self), arcs)};
  return make_precomputed("planned", stochasticity::doubly, false, true, std::move(rounds));
}

}  // namespace terse::topology::detail

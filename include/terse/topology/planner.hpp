#pragma once
/// @file
/// Topologies planned from measured speeds, and clusters of ranks.
///
/// `plan_topology(m, options, seed, epoch)` is a pure function: every rank
/// that holds the same measurements (collective/replanning.hpp agrees on
/// them with one allgather) builds the same graph, bit for bit, without a
/// broadcast. The rules, and why they keep gossip converging:
///
/// 1. Speeds become classes: a link whose bandwidth is within a factor
///    `class_ratio` of the fastest link is class 0, within class_ratio^2
///    class 1, and so on; an edge's class is the larger of its link's and
///    its two ends' step-time classes. Noise below that factor changes
///    nothing.
/// 2. A spanning tree first (a Kruskal over classes): components are joined
///    by the best edge left, so a slow edge is used only where no faster one
///    joins the same parts, and a slow rank hangs off a fast one by a single
///    edge. Ties go to ranks of fewer neighbours, then to a draw keyed by
///    (seed, epoch, edge).
/// 3. Then fast (class 0) edges only, between ranks with fewer than
///    `degree` neighbours: fast, well-connected ranks get more edges.
/// 4. Metropolis-Hastings weights, M_ij = 1 / (1 + max(d_i, d_j)): symmetric
///    and doubly stochastic on any undirected graph, so the mean is kept
///    exactly (averaging and push-sum alike: doubly is column-stochastic).
///
/// Valid and connected is what consensus needs: a doubly stochastic M with
/// positive diagonal on a connected graph has |lambda_2| < 1, so
/// ||X_t - 1 xbar^T|| <= rho^t ||X_0 - 1 xbar^T|| with rho = ||M - J||_2 < 1,
/// and every plan reports rho, the rate it pays for the links it leaves out.

#include <terse/topology/detail/build.hpp>
#include <terse/topology/detail/clusters.hpp>
#include <terse/topology/detail/planner_greedy.hpp>
#include <terse/topology/detail/validate.hpp>
#include <terse/topology/graph.hpp>
#include <terse/topology/static_graphs.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace terse::topology {

/// What the ranks measured, as every rank holds it after the exchange.
struct measurements {
  int world = 0;
  /// Per rank: seconds of a step's compute (0: not measured).
  std::vector<double> step_seconds;
  /// W x W row-major, [from * W + to]: bytes per second `from` achieved to
  /// `to` (0: not measured; the planner estimates it from both ends' best links).
  std::vector<double> link_bytes_per_s;

  /// Nothing measured yet: every rank and link unknown.
  static measurements unknown(int W)
  {
    const auto w = static_cast<std::size_t>(W < 0 ? 0 : W);
    return measurements{W, std::vector<double>(w, 0.0), std::vector<double>(w * w, 0.0)};
  }
  double link(int from, int to) const
  {
    return link_bytes_per_s[static_cast<std::size_t>(from) * static_cast<std::size_t>(world) +
                            static_cast<std::size_t>(to)];
  }
  /// Throws invalid_argument naming the first entry that is not a finite
  /// number >= 0, or a size that does not fit `world`.
  void validate() const
  {
    constexpr std::string_view name = "measurements";
    detail::expect_world(world, name);
    const auto w = static_cast<std::size_t>(world);
    if (step_seconds.size() != w || link_bytes_per_s.size() != w * w) {
      detail::reject(name, "need W step times and W x W link bandwidths for W = " + std::to_string(world));
    }
    for (std::size_t r = 0; r < w; ++r) {
      if (!(step_seconds[r] >= 0.0) || !std::isfinite(step_seconds[r])) {
        detail::reject(name, "rank " + std::to_string(r) + " declared a step time of " +
                                 detail::format_number(step_seconds[r]) + " s; it must be finite and >= 0");
      }
    }
    for (std::size_t k = 0; k < w * w; ++k) {
      if (!(link_bytes_per_s[k] >= 0.0) || !std::isfinite(link_bytes_per_s[k])) {
        detail::reject(name, "rank " + std::to_string(k / w) + " declared " +
                                 detail::format_number(link_bytes_per_s[k]) + " B/s to rank " + std::to_string(k % w) +
                                 "; bandwidths must be finite and >= 0");
      }
    }
  }
};

struct planner_options {
  /// Fast edges are added while both ends have fewer neighbours than this
  /// (the spanning tree may exceed it where connectivity needs it).
  std::size_t degree = 3;
  /// Speeds within this factor are one class (> 1).
  double class_ratio = 2.0;
};

/// A planned topology and what it cost in mixing.
struct plan {
  graph topology;
  std::vector<std::pair<int, int>> edges;  ///< undirected, i < j, in the order they were chosen
  double rho = 0.0;                        ///< ||M - J||_2: consensus contracts by rho per round
  std::uint64_t epoch = 0;
};

/// The graph for these measurements (file comment); raises invalid_argument
/// on measurements that do not validate() or a class_ratio <= 1.
inline plan plan_topology(const measurements& m, const planner_options& options, std::uint64_t seed,
                          std::uint64_t epoch)
{
  m.validate();
  if (!(options.class_ratio > 1.0) || !std::isfinite(options.class_ratio)) {
    detail::reject("plan_topology",
                   "class_ratio must be a finite number > 1, got " + detail::format_number(options.class_ratio));
  }
  if (options.degree < 1) {
    detail::reject("plan_topology", "degree must be at least 1");
  }
  const std::vector<double> links = detail::estimated_links(m.world, m.link_bytes_per_s);
  const std::vector<double> steps = detail::estimated_steps(m.step_seconds);
  const detail::edge_classes classes = detail::classify(m.world, links, steps, options.class_ratio);
  std::vector<std::pair<int, int>> edges = detail::greedy_edges(classes, options.degree, seed, epoch);
  if (m.world == 1) {
    return plan{ring(1).with_epoch(epoch), std::move(edges), 0.0, epoch};
  }
  // Metropolis-Hastings, then slow edges made heavier by the least rho of a
  // fixed grid: each such edge takes a share of its ends' self weights, so
  // the few messages on slow links carry more of the average.
  std::optional<plan> best;
  for (const double boost : detail::slow_edge_boosts) {
    graph candidate(detail::planned_spec(m.world, edges, classes, boost), epoch);
    const double rho = candidate.rho();
    if (!best || rho < best->rho) {
      best = plan{std::move(candidate), edges, rho, epoch};
    }
    if (!detail::has_slow_edge(edges, classes)) {
      break;
    }
  }
  return *best;
}

/// Which ranks average together, and who speaks for each group.
struct clustering {
  std::vector<int> cluster_of;  ///< per rank
  std::vector<int> leaders;     ///< per cluster: its lowest rank
  std::vector<int> sizes;       ///< per cluster: n_c

  int world() const noexcept { return static_cast<int>(cluster_of.size()); }
  int count() const noexcept { return static_cast<int>(sizes.size()); }
};

/// How cluster leaders are linked.
enum class leader_links : std::uint8_t {
  complete,  ///< every leader with every other: one outer round gives the exact global mean
  ring,      ///< leader c with c +- 1: two messages per leader, contracts by the ring's rate
};

/// A clustering from a cluster number per rank (numbers 0..K-1, each used).
inline clustering clusters_from(std::vector<int> cluster_of)
{
  constexpr std::string_view name = "clusters_from";
  detail::expect_world(static_cast<int>(cluster_of.size()), name);
  const int k = *std::max_element(cluster_of.begin(), cluster_of.end()) + 1;
  clustering c{std::move(cluster_of), std::vector<int>(static_cast<std::size_t>(std::max(k, 0)), -1),
               std::vector<int>(static_cast<std::size_t>(std::max(k, 0)), 0)};
  for (int r = 0; r < c.world(); ++r) {
    const int id = c.cluster_of[static_cast<std::size_t>(r)];
    if (id < 0) {
      detail::reject(name,
                     "rank " + std::to_string(r) + " is in cluster " + std::to_string(id) + "; clusters are >= 0");
    }
    auto& leader = c.leaders[static_cast<std::size_t>(id)];
    leader = leader < 0 ? r : leader;
    ++c.sizes[static_cast<std::size_t>(id)];
  }
  for (std::size_t id = 0; id < c.sizes.size(); ++id) {
    if (c.sizes[id] == 0) {
      detail::reject(name, "cluster " + std::to_string(id) + " has no rank; number clusters 0..K-1");
    }
  }
  return c;
}

/// k clusters (clamped to [1, W]) of ranks of similar speed: optimal 1-D
/// k-means over log2(step / fastest step) + log2(fastest link / the rank's
/// best link). Cluster 0 holds the fastest ranks.
inline clustering cluster_by_speed(const measurements& m, int k)
{
  m.validate();
  const auto w = static_cast<std::size_t>(m.world);
  const std::vector<double> links = detail::estimated_links(m.world, m.link_bytes_per_s);
  const std::vector<double> steps = detail::estimated_steps(m.step_seconds);
  std::vector<double> best(w, 0.0);
  double fastest_link = 0.0;
  for (std::size_t i = 0; i < w; ++i) {
    for (std::size_t j = 0; j < w; ++j) {
      best[i] = std::max(best[i], links[i * w + j]);
    }
    fastest_link = std::max(fastest_link, best[i]);
  }
  const double fastest_step = *std::min_element(steps.begin(), steps.end());
  std::vector<double> score(w, 0.0);
  for (std::size_t i = 0; i < w; ++i) {
    score[i] = std::log2(steps[i] / fastest_step) + (w > 1 ? std::log2(fastest_link / best[i]) : 0.0);
  }
  return clusters_from(detail::kmeans_1d(score, std::clamp(k, 1, m.world)));
}

/// The W x W matrix one clustered round applies: average inside each
/// cluster, leaders mix cluster means y_c <- sum_d A_cd y_d with
/// A_cd = n_d / W for each linked cluster d and A_cc the rest, then
/// broadcast. So M_ij = 1/W between ranks of linked clusters and
/// A_cc / n_c inside cluster c: symmetric and doubly stochastic (the
/// global mean is kept whatever the sizes), connected when the leader
/// graph is. rho() of the result is the rate per outer round.
inline graph clustered_graph(const clustering& c, leader_links links)
{
  const int world = c.world();
  const int k = c.count();
  const auto w = static_cast<std::size_t>(world);
  const auto linked = [&](int a, int b) {
    if (a == b) {
      return false;
    }
    if (links == leader_links::complete || k <= 3) {
      return true;
    }
    return (a + 1) % k == b || (b + 1) % k == a;
  };
  std::vector<double> self_cluster(static_cast<std::size_t>(k), 1.0);
  for (int a = 0; a < k; ++a) {
    for (int b = 0; b < k; ++b) {
      if (linked(a, b)) {
        self_cluster[static_cast<std::size_t>(a)] -=
            static_cast<double>(c.sizes[static_cast<std::size_t>(b)]) / static_cast<double>(world);
      }
    }
  }
  std::vector<double> self(w);
  std::vector<edge> arcs;
  for (int i = 0; i < world; ++i) {
    const int ci = c.cluster_of[static_cast<std::size_t>(i)];
    const double inside = self_cluster[static_cast<std::size_t>(ci)] / c.sizes[static_cast<std::size_t>(ci)];
    self[static_cast<std::size_t>(i)] = inside;
    for (int j = 0; j < world; ++j) {
      const int cj = c.cluster_of[static_cast<std::size_t>(j)];
      if (j != i && (ci == cj || linked(ci, cj))) {
        arcs.push_back({j, i, ci == cj ? inside : 1.0 / static_cast<double>(world)});
      }
    }
  }
  std::vector<mixing_round> rounds{detail::round_from_arcs(world, std::move(self), arcs)};
  return graph(detail::make_precomputed("clustered", stochasticity::doubly, false, true, std::move(rounds)));
}

}  // namespace terse::topology

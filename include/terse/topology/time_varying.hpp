#pragma once
/// @file
/// Time-varying topologies: one peer per rank per round, so a round costs one
/// message, yet the sequence mixes like a dense graph. Every round is doubly
/// stochastic and a pure function of (W, seed, t, epoch).

#include <terse/topology/detail/base_graph.hpp>
#include <terse/topology/detail/build.hpp>
#include <terse/topology/graph.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace terse::topology {

/// tau = ceil(log2 W) rounds; in round t, with k = t mod tau, rank r receives
/// from r + 2^k, sends to r - 2^k and keeps x_r <- (x_r + x_{r+2^k}) / 2.
/// Exact average after tau rounds only when W is a power of two.
inline graph one_peer_exponential(int W)
{
  detail::expect_world(W, "one-peer exponential");
  auto spec = std::make_shared<detail::graph_spec>();
  spec->source = detail::family::one_peer_exponential;
  spec->name = "one-peer exponential";
  spec->world = W;
  spec->directed = W > 2;
  spec->period = W == 1 ? 1 : static_cast<std::size_t>(std::bit_width(static_cast<unsigned>(W - 1)));
  spec->max_degree = W == 1 ? 0 : 1;
  spec->weights_hash = detail::hash_combine(static_cast<std::uint64_t>(spec->source), static_cast<std::uint64_t>(W));
  return graph(std::move(spec));
}

/// The Base-2 graph (Takezawa et al., NeurIPS 2023; detail/base_graph.hpp):
/// every round a matching with non-negative symmetric weights, and the
/// product of one period is exactly J for every W. W = 2^m takes m rounds;
/// W = 3, 5, 6, 12 take 3, 5, 4, 5. Exact over rounds [t0, t0 + period) only
/// for t0 a multiple of period() (the rounds do not commute).
inline graph one_peer_exact(int W)
{
  detail::expect_world(W, "one-peer exact");
  std::vector<mixing_round> rounds;
  for (const detail::matching& m : detail::base_graph(W)) {
    mixing_round round{W, std::vector<double>(static_cast<std::size_t>(W), 1.0), {}};
    permutation p{std::vector<int>(static_cast<std::size_t>(W), -1), std::vector<double>(static_cast<std::size_t>(W))};
    bool any = false;
    for (std::size_t r = 0; r < static_cast<std::size_t>(W); ++r) {
      if (m.partner[r] >= 0) {
        p.send_to[r] = m.partner[r];
        p.weight[r] = m.weight[r];
        round.self_weight[r] = 1.0 - m.weight[r];
        any = true;
      }
    }
    if (any) {
      round.permutations.push_back(std::move(p));
    }
    rounds.push_back(std::move(round));
  }
  return graph(detail::make_precomputed("one-peer exact", stochasticity::doubly, false, true, std::move(rounds)));
}

/// Each round a uniformly random maximal matching (odd W leaves one rank
/// out), 1/2 per matched pair, drawn with Philox keyed by (seed, epoch, t).
inline graph random_matchings(int W, std::uint64_t seed)
{
  detail::expect_world(W, "random matchings");
  auto spec = std::make_shared<detail::graph_spec>();
  spec->source = detail::family::random_matchings;
  spec->name = "random matchings";
  spec->world = W;
  spec->seed = seed;
  spec->period = W <= 2 ? 1 : 0;  // W <= 2 has a single maximal matching
  spec->max_degree = W == 1 ? 0 : 1;
  spec->weights_hash = detail::hash_combine(static_cast<std::uint64_t>(spec->source), static_cast<std::uint64_t>(W));
  return graph(std::move(spec));
}

}  // namespace terse::topology

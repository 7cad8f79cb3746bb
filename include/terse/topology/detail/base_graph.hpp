#pragma once
/// @file
/// The Base-2 graph, the k = 1 case of the Base-(k+1) graph (Takezawa, Sato,
/// Yamada, "Beyond Exponential Graph: Communication-Efficient Topologies for
/// Decentralized Learning via Finite-time Convergence", NeurIPS 2023): a
/// sequence of matchings whose product is exactly J for every W. Written
/// from the paper's construction (its reference code is
/// yukiTakezawa/BaseGraph, base_graph.py and simple_base_graph.py).

#include <bit>
#include <cstddef>
#include <numeric>
#include <vector>

namespace terse::topology::detail {

/// One round of a one-peer schedule: partner[r] (-1: none) and the weight
/// of that edge; self weight is 1 - weight (1 when alone).
struct matching {
  std::vector<int> partner;
  std::vector<double> weight;

  explicit matching(int world)
      : partner(static_cast<std::size_t>(world), -1), weight(static_cast<std::size_t>(world), 0.0)
  {
  }
  void pair(int a, int b, double w)
  {
    partner[static_cast<std::size_t>(a)] = b;
    partner[static_cast<std::size_t>(b)] = a;
    weight[static_cast<std::size_t>(a)] = w;
    weight[static_cast<std::size_t>(b)] = w;
  }
};

/// Rounds the one-peer hypercube takes on n nodes (the reference counts one
/// identity round for a single node).
inline std::size_t hypercube_length(std::size_t n)
{
  return n <= 1 ? 1 : static_cast<std::size_t>(std::countr_zero(n));
}

/// Round `step` of the one-peer hypercube on `nodes` (a power-of-two count):
/// nodes[i] averages with nodes[i xor 2^step].
inline void hypercube_step(const std::vector<int>& nodes, std::size_t step, matching& round)
{
  if (nodes.size() <= 1) {
    return;
  }
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const std::size_t j = i ^ (std::size_t{1} << step);
    if (i < j) {
      round.pair(nodes[i], nodes[j], 0.5);
    }
  }
}

/// The simple Base-2 graph on `nodes`: split them into blocks of distinct
/// powers of two (W's binary digits, largest first); average inside every
/// block; then, for q = 0, 1, ..., every node of each smaller block l > q
/// pairs with its own node of block q with weight n_q / (n_q + ... + n_last),
/// which leaves blocks > q all holding the mean of blocks >= q; meanwhile the
/// blocks already visited re-average inside themselves.
inline std::vector<matching> simple_base_graph(int world, const std::vector<int>& nodes)
{
  const std::size_t n = nodes.size();
  std::vector<matching> rounds;
  if (n == 1 || std::has_single_bit(n)) {
    for (std::size_t step = 0; step < hypercube_length(n); ++step) {
      rounds.emplace_back(world);
      hypercube_step(nodes, step, rounds.back());
    }
    return rounds;
  }
  std::vector<std::vector<int>> blocks;
  for (std::size_t bit = std::bit_floor(n), begin = 0; bit > 0; bit >>= 1) {
    if ((n & bit) != 0) {
      blocks.emplace_back(nodes.begin() + static_cast<std::ptrdiff_t>(begin),
                          nodes.begin() + static_cast<std::ptrdiff_t>(begin + bit));
      begin += bit;
    }
  }
  const std::size_t last = blocks.size() - 1;
  const std::size_t first_length = hypercube_length(blocks[0].size());
  std::vector<std::size_t> steps_after(blocks.size(), 0);
  for (std::size_t m = 0;; ++m) {
    matching round(world);
    std::vector<int> unpaired;  // block q's nodes not yet given a partner this round
    for (std::size_t l = blocks.size(); l-- > 0;) {
      const std::size_t length = hypercube_length(blocks[l].size());
      if (m < first_length) {
        hypercube_step(blocks[l], m % length, round);
      } else if (m < first_length + l) {
        const std::size_t q = m - first_length;
        if (l == last) {
          unpaired = blocks[q];
        }
        std::size_t tail = 0;
        for (std::size_t i = q; i < blocks.size(); ++i) {
          tail += blocks[i].size();
        }
        const double w = static_cast<double>(blocks[q].size()) / static_cast<double>(tail);
        for (int node : blocks[l]) {
          round.pair(node, unpaired.back(), w);
          unpaired.pop_back();
        }
      } else if (m == first_length + l && l != last) {
        // The rest of block q all hold the same value; pairing them changes
        // nothing exactly but keeps the reference's edges (helps when ranks
        // drift between rounds).
        for (std::size_t i = 0; i + 1 < unpaired.size(); i += 2) {
          round.pair(unpaired[i], unpaired[i + 1], 0.5);
        }
      } else {
        hypercube_step(blocks[l], steps_after[l] % length, round);
        ++steps_after[l];
      }
    }
    rounds.push_back(std::move(round));
    if (steps_after[0] == first_length) {
      return rounds;
    }
  }
}

/// The Base-2 graph on W ranks: with W = 2^v * odd, either the simple graph
/// on all ranks or, if shorter, the simple graph inside each of 2^v groups of
/// `odd` consecutive ranks followed by a hypercube across them (the
/// reference keeps the split on a tie).
inline std::vector<matching> base_graph(int world)
{
  std::vector<int> all(static_cast<std::size_t>(world));
  std::iota(all.begin(), all.end(), 0);
  std::vector<matching> simple = simple_base_graph(world, all);
  const auto w = static_cast<std::size_t>(world);
  const std::size_t groups = std::size_t{1} << std::countr_zero(w);
  const std::size_t odd = w / groups;
  std::vector<int> group(odd);
  std::iota(group.begin(), group.end(), 0);
  const std::size_t inner_length = simple_base_graph(static_cast<int>(odd), group).size();
  if (simple.size() < inner_length + hypercube_length(groups)) {
    return simple;
  }
  std::vector<matching> rounds(inner_length + hypercube_length(groups), matching(world));
  for (std::size_t g = 0; g < groups; ++g) {
    std::iota(group.begin(), group.end(), static_cast<int>(g * odd));
    const std::vector<matching> inner = simple_base_graph(world, group);
    for (std::size_t m = 0; m < inner.size(); ++m) {
      for (int node : group) {
        const auto r = static_cast<std::size_t>(node);
        rounds[m].partner[r] = inner[m].partner[r];
        rounds[m].weight[r] = inner[m].weight[r];
      }
    }
  }
  std::vector<int> across(groups);
  for (std::size_t j = 0; j < odd; ++j) {
    for (std::size_t g = 0; g < groups; ++g) {
      across[g] = static_cast<int>(j + g * odd);
    }
    for (std::size_t step = 0; step < hypercube_length(groups); ++step) {
      hypercube_step(across, step, rounds[inner_length + step]);
    }
  }
  return rounds;
}

}  // namespace terse::topology::detail

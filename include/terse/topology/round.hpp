#pragma once
/// @file
/// The pieces one gossip round is made of: the mixing matrix as self weights
/// plus partial permutations (one sendrecv each), and one rank's share of it.
/// graph.hpp includes this; it is separate so the detail builders can use the
/// types without the graph class.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace terse::topology {

/// What the weights of a round preserve.
enum class stochasticity : std::uint8_t {
  doubly,  ///< rows and columns sum to 1 (averaging: keeps the mean, converges to it)
  column,  ///< columns sum to 1 (push-sum: each sender splits its mass)
  row,     ///< rows sum to 1 (receiver-normalised averaging: converges to a weighted mean)
};

/// How weights are put on the edges of an undirected graph.
enum class weighting : std::uint8_t {
  uniform,              ///< 1/(d+1) on every edge and self, where the graph is d-regular (else invalid_argument)
  metropolis_hastings,  ///< M_ij = 1/(1 + max(d_i, d_j)) on each edge, M_ii = 1 - sum_j M_ij
};

/// `from` sends to `to`; weight = M[to][from].
struct edge {
  int from = 0;
  int to = 0;
  double weight = 0.0;
};

/// A partial permutation: rank r sends to send_to[r] (-1: sends nothing in
/// it); weight[r] = M[send_to[r]][r]. Injective: no rank receives twice
/// within one permutation.
struct permutation {
  std::vector<int> send_to;
  std::vector<double> weight;
};

/// One round over all ranks: M as self weights plus permutations. Each
/// permutation is one sendrecv per rank; all of a round's permutations are
/// posted together.
struct mixing_round {
  int world = 0;
  std::vector<double> self_weight;  ///< M[r][r]
  std::vector<permutation> permutations;

  /// The W x W matrix M (row convention: x_i <- sum_j M[i][j] x_j), for tests
  /// and validation.
  std::vector<std::vector<double>> dense() const
  {
    const auto w = static_cast<std::size_t>(world);
    std::vector<std::vector<double>> m(w, std::vector<double>(w, 0.0));
    for (std::size_t r = 0; r < w; ++r) {
      m[r][r] = self_weight[r];
    }
    for (const permutation& p : permutations) {
      for (std::size_t r = 0; r < w; ++r) {
        if (p.send_to[r] >= 0) {
          m[static_cast<std::size_t>(p.send_to[r])][r] += p.weight[r];
        }
      }
    }
    return m;
  }
};

struct link {
  int peer = 0;
  double weight = 0.0;
};

/// One rank's part of a round. sends: peers it sends to, weight =
/// M[peer][rank] (what a push-sum sender scales by); recvs: peers it receives
/// from, weight = M[rank][peer] (what an averaging receiver weighs by). Both
/// lists are in permutation order, so sends[k]/recvs[k] of different ranks
/// pair up; a peer can appear in both. Self is in neither.
struct rank_round {
  double self_weight = 1.0;
  std::vector<link> sends;
  std::vector<link> recvs;
};

}  // namespace terse::topology

#pragma once
/// @file
/// What a topology::graph shares between its copies: the immutable
/// description of the round sequence, and the lazily computed rho.

#include <terse/topology/round.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace terse::topology::detail {

/// How rounds are produced. Precomputed rounds cover static graphs and short
/// periodic schedules; the others are closed forms, so they cost O(1) memory
/// whatever the horizon.
enum class family : std::uint8_t {
  precomputed,           ///< rounds[t mod rounds.size()]
  one_peer_exponential,  ///< r <- (r + r_{+2^k}) / 2, k = t mod tau
  random_matchings,      ///< a fresh Philox-drawn matching every round
};

struct graph_spec {
  family source = family::precomputed;
  std::string name;
  stochasticity kind = stochasticity::doubly;
  bool directed = false;
  int world = 1;
  std::uint64_t seed = 0;
  std::size_t period = 1;
  std::size_t max_degree = 0;
  std::uint64_t weights_hash = 0;                ///< identifies the weights of every round
  std::vector<mixing_round> rounds;              ///< precomputed only
  std::vector<std::vector<rank_round>> by_rank;  ///< precomputed only: [round][rank]
};

/// rho is O(W^3), so computed once per (graph, epoch) and shared by copies.
struct rho_cache {
  std::once_flag once;
  double value = 0.0;
};

/// splitmix64's finaliser: a bijection that spreads nearby inputs.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept
{
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

constexpr std::uint64_t hash_combine(std::uint64_t h, std::uint64_t v) noexcept
{
  return mix64(h ^ mix64(v));
}

inline std::uint64_t hash_double(std::uint64_t h, double v) noexcept
{
  return hash_combine(h, std::bit_cast<std::uint64_t>(v + 0.0));  // +0.0 folds -0 into 0
}

/// Hashes the weights of a round, so equal plans hash equal whatever their name.
inline std::uint64_t hash_round(std::uint64_t h, const mixing_round& round) noexcept
{
  h = hash_combine(h, static_cast<std::uint64_t>(round.world));
  for (double w : round.self_weight) {
    h = hash_double(h, w);
  }
  for (const permutation& p : round.permutations) {
    h = hash_combine(h, 0x7065726Dull);  // "perm": separates permutations
    for (std::size_t r = 0; r < p.send_to.size(); ++r) {
      h = hash_combine(h, static_cast<std::uint64_t>(static_cast<std::int64_t>(p.send_to[r])));
      h = hash_double(h, p.weight[r]);
    }
  }
  return h;
}

}  // namespace terse::topology::detail

// Shared checks for the topology tests: a graph's rounds are valid mixing
// matrices, and every rank's share agrees with the whole round.
#pragma once

#include <terse/core/error.hpp>
#include <terse/core/philox.hpp>
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace topology_checks {

namespace tp = terse::topology;
using matrix = std::vector<std::vector<double>>;

/// Runs `f` and reports whether it raised terse::error(invalid_argument).
inline bool rejects(const std::function<void()>& f)
{
  try {
    f();
  } catch (const terse::error& e) {
    return e.code() == terse::errc::invalid_argument;
  }
  return false;
}

/// The message of the invalid_argument `f` raises ("" if none).
inline std::string rejection(const std::function<void()>& f)
{
  try {
    f();
  } catch (const terse::error& e) {
    return e.code() == terse::errc::invalid_argument ? e.what() : "";
  }
  return "";
}

/// Deterministic uniform doubles in [0, 1) from Philox.
struct uniform_source {
  terse::random_stream stream;
  std::uint64_t next_index = 0;
  explicit uniform_source(std::uint64_t seed) : stream{seed, 0, 0} {}
  double operator()() { return static_cast<double>(stream.bits(next_index++)) * 0x1p-32; }
  int below(int n) { return static_cast<int>((*this)() * n); }
};

/// Checks round t of g: stochasticity, non-negativity, injective
/// permutations without self sends, symmetry for undirected graphs, and that
/// round_for agrees with the round for every rank (weights, support and
/// permutation order).
inline void check_round(const tp::graph& g, std::uint64_t t)
{
  CAPTURE(g.name());
  CAPTURE(g.world());
  CAPTURE(t);
  const tp::mixing_round round = g.round(t);
  const auto w = static_cast<std::size_t>(g.world());
  REQUIRE(round.world == g.world());
  REQUIRE(round.self_weight.size() == w);
  const matrix m = round.dense();
  for (std::size_t i = 0; i < w; ++i) {
    double row = 0.0;
    double column = 0.0;
    for (std::size_t j = 0; j < w; ++j) {
      CHECK(m[i][j] >= 0.0);
      row += m[i][j];
      column += m[j][i];
      if (!g.directed()) {
        CHECK(std::abs(m[i][j] - m[j][i]) <= 1e-15);
      }
    }
    if (g.kind() != tp::stochasticity::column) {
      CHECK(std::abs(row - 1.0) <= 1e-12);
    }
    if (g.kind() != tp::stochasticity::row) {
      CHECK(std::abs(column - 1.0) <= 1e-12);
    }
  }
  for (const tp::permutation& p : round.permutations) {
    REQUIRE(p.send_to.size() == w);
    REQUIRE(p.weight.size() == w);
    std::vector<int> received(w, 0);
    for (std::size_t r = 0; r < w; ++r) {
      if (p.send_to[r] >= 0) {
        CHECK(p.send_to[r] != static_cast<int>(r));
        REQUIRE(p.send_to[r] < g.world());
        CHECK(++received[static_cast<std::size_t>(p.send_to[r])] == 1);
      } else {
        CHECK(p.send_to[r] == -1);
      }
    }
  }
  tp::rank_round mine;
  for (std::size_t r = 0; r < w; ++r) {
    g.round_for(static_cast<int>(r), t, mine);
    CHECK(mine.self_weight == m[r][r]);
    std::vector<tp::link> sends;
    std::vector<tp::link> recvs;
    for (const tp::permutation& p : round.permutations) {
      if (p.send_to[r] >= 0) {
        sends.push_back({p.send_to[r], p.weight[r]});
      }
      for (std::size_t s = 0; s < w; ++s) {
        if (p.send_to[s] == static_cast<int>(r)) {
          recvs.push_back({static_cast<int>(s), p.weight[s]});
        }
      }
    }
    REQUIRE(mine.sends.size() == sends.size());
    REQUIRE(mine.recvs.size() == recvs.size());
    CHECK(mine.sends.size() <= g.max_degree());
    CHECK(mine.recvs.size() <= g.max_degree());
    for (std::size_t k = 0; k < sends.size(); ++k) {
      CHECK(mine.sends[k].peer == sends[k].peer);
      CHECK(mine.sends[k].weight == m[static_cast<std::size_t>(sends[k].peer)][r]);
    }
    for (std::size_t k = 0; k < recvs.size(); ++k) {
      CHECK(mine.recvs[k].peer == recvs[k].peer);
      CHECK(mine.recvs[k].weight == m[r][static_cast<std::size_t>(recvs[k].peer)]);
    }
    std::size_t support_in = 0;
    std::size_t support_out = 0;
    for (std::size_t j = 0; j < w; ++j) {
      support_in += j != r && m[r][j] != 0.0 ? 1 : 0;
      support_out += j != r && m[j][r] != 0.0 ? 1 : 0;
    }
    // Every arc is in exactly one permutation (random matchings list an
    // idle rank with weight 0 nowhere, so the counts still agree).
    CHECK(support_in == recvs.size());
    CHECK(support_out == sends.size());
  }
}

/// check_round over one period (8 rounds for never-repeating graphs).
inline void check_graph(const tp::graph& g)
{
  const std::uint64_t rounds = g.period() == 0 ? 8 : g.period();
  for (std::uint64_t t = 0; t < rounds; ++t) {
    check_round(g, t);
  }
}

/// x <- M x for each column of x (W x n, row-major vectors).
inline matrix apply(const matrix& m, const matrix& x)
{
  matrix y(x.size(), std::vector<double>(x[0].size(), 0.0));
  for (std::size_t i = 0; i < m.size(); ++i) {
    for (std::size_t j = 0; j < m.size(); ++j) {
      for (std::size_t c = 0; c < x[0].size(); ++c) {
        y[i][c] += m[i][j] * x[j][c];
      }
    }
  }
  return y;
}

}  // namespace topology_checks

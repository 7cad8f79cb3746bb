#pragma once
/// @file
/// Checks a mixing round before any rank runs it: a bad weight silently
/// biases the average, so every built graph and every user matrix passes
/// through here, and a violation names the rank and the number found.

#include <terse/core/error.hpp>
#include <terse/topology/round.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace terse::topology::detail {

inline constexpr double sum_tolerance = 1e-12;
inline constexpr double symmetry_tolerance = 1e-14;

inline std::string format_number(double v)
{
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", v);
  return text;
}

[[noreturn]] inline void reject(std::string_view graph_name, const std::string& what)
{
  std::string message(graph_name);
  message += ": ";
  message += what;
  TERSE_FAIL(errc::invalid_argument, message);
}

/// Throws invalid_argument unless `round` is well formed and its weights are
/// `kind`-stochastic; with `symmetric`, also unless M == M^T.
inline void validate_round(const mixing_round& round, stochasticity kind, bool symmetric, std::string_view name)
{
  const int world = round.world;
  if (world < 1) {
    reject(name, "a round needs at least one rank, got world " + std::to_string(world));
  }
  const auto w = static_cast<std::size_t>(world);
  if (round.self_weight.size() != w) {
    reject(name, "self_weight has " + std::to_string(round.self_weight.size()) + " entries for world " +
                     std::to_string(world));
  }
  std::vector<double> row_sum(round.self_weight);
  std::vector<double> column_sum(round.self_weight);
  for (std::size_t r = 0; r < w; ++r) {
    if (!(round.self_weight[r] >= 0.0) || !std::isfinite(round.self_weight[r])) {
      reject(name, "rank " + std::to_string(r) + " has self weight " + format_number(round.self_weight[r]) +
                       "; weights must be finite and non-negative");
    }
  }
  std::vector<edge> arcs;
  std::vector<char> receives(w);
  for (std::size_t k = 0; k < round.permutations.size(); ++k) {
    const permutation& p = round.permutations[k];
    if (p.send_to.size() != w || p.weight.size() != w) {
      reject(name, "permutation " + std::to_string(k) + " does not have one entry per rank");
    }
    std::fill(receives.begin(), receives.end(), char{0});
    for (std::size_t r = 0; r < w; ++r) {
      const int to = p.send_to[r];
      if (to == -1) {
        continue;
      }
      const std::string where = "in permutation " + std::to_string(k) + ", rank " + std::to_string(r);
      if (to < 0 || to >= world) {
        reject(name, where + " sends to " + std::to_string(to) + ", outside [0, " + std::to_string(world) + ")");
      }
      if (static_cast<std::size_t>(to) == r) {
        reject(name, where + " sends to itself; self weight belongs in self_weight");
      }
      if (receives[static_cast<std::size_t>(to)] != 0) {
        reject(name, where + " sends to rank " + std::to_string(to) + ", which already receives in it");
      }
      receives[static_cast<std::size_t>(to)] = 1;
      if (!(p.weight[r] >= 0.0) || !std::isfinite(p.weight[r])) {
        reject(name, where + " sends with weight " + format_number(p.weight[r]) +
                         "; weights must be finite and non-negative");
      }
      row_sum[static_cast<std::size_t>(to)] += p.weight[r];
      column_sum[r] += p.weight[r];
      arcs.push_back({static_cast<int>(r), to, p.weight[r]});
    }
  }
  const bool rows = kind != stochasticity::column;
  const bool columns = kind != stochasticity::row;
  for (std::size_t r = 0; r < w; ++r) {
    if (rows && std::abs(row_sum[r] - 1.0) > sum_tolerance) {
      reject(name, "row " + std::to_string(r) + " (the weights rank " + std::to_string(r) + " receives with) sums to " +
                       format_number(row_sum[r]) + ", not 1");
    }
    if (columns && std::abs(column_sum[r] - 1.0) > sum_tolerance) {
      reject(name, "column " + std::to_string(r) + " (the weights rank " + std::to_string(r) + " sends with) sums to " +
                       format_number(column_sum[r]) + ", not 1");
    }
  }
  const auto by_ends = [](const edge& a, const edge& b) { return a.from != b.from ? a.from < b.from : a.to < b.to; };
  std::sort(arcs.begin(), arcs.end(), by_ends);
  for (std::size_t i = 1; i < arcs.size(); ++i) {
    if (arcs[i].from == arcs[i - 1].from && arcs[i].to == arcs[i - 1].to) {
      reject(name, "rank " + std::to_string(arcs[i].from) + " sends to rank " + std::to_string(arcs[i].to) +
                       " in two permutations of one round");
    }
  }
  if (!symmetric) {
    return;
  }
  for (const edge& a : arcs) {
    const edge reverse{a.to, a.from, 0.0};
    const auto it = std::lower_bound(arcs.begin(), arcs.end(), reverse, by_ends);
    const bool found = it != arcs.end() && it->from == a.to && it->to == a.from;
    if (!found || std::abs(it->weight - a.weight) > symmetry_tolerance) {
      reject(name, "weights are not symmetric: M[" + std::to_string(a.to) + "][" + std::to_string(a.from) +
                       "] = " + format_number(a.weight) + " but M[" + std::to_string(a.from) + "][" +
                       std::to_string(a.to) + "] = " + format_number(found ? it->weight : 0.0));
    }
  }
}

}  // namespace terse::topology::detail

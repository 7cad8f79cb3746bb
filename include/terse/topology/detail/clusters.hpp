#pragma once
/// @file
/// Grouping ranks by speed: optimal 1-D k-means over one score per rank
/// (dynamic programming over the sorted scores, O(k W^2)), deterministic:
/// ties in the order go by rank, ties in cost to the earlier split.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <vector>

namespace terse::topology::detail {

/// The cluster (0 = the lowest scores) of each of `scores`, k clusters, each
/// non-empty, minimising the within-cluster sum of squares.
inline std::vector<int> kmeans_1d(const std::vector<double>& scores, int k)
{
  const std::size_t n = scores.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  std::vector<double> sum(n + 1, 0.0), squares(n + 1, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = scores[order[i]];
    sum[i + 1] = sum[i] + x;
    squares[i + 1] = squares[i] + x * x;
  }
  // Sum of squared deviations of sorted[a, b).
  const auto cost = [&](std::size_t a, std::size_t b) {
    const double m = static_cast<double>(b - a);
    const double s = sum[b] - sum[a];
    return std::max(0.0, (squares[b] - squares[a]) - s * s / m);
  };
  const auto clusters = static_cast<std::size_t>(k);
  constexpr double inf = std::numeric_limits<double>::infinity();
  // best[c][b]: the least cost of sorted[0, b) in c + 1 clusters; from[c][b]: where the last begins.
  std::vector<std::vector<double>> best(clusters, std::vector<double>(n + 1, inf));
  std::vector<std::vector<std::size_t>> from(clusters, std::vector<std::size_t>(n + 1, 0));
  for (std::size_t b = 1; b <= n; ++b) {
    best[0][b] = cost(0, b);
  }
  for (std::size_t c = 1; c < clusters; ++c) {
    for (std::size_t b = c + 1; b <= n; ++b) {
      for (std::size_t a = c; a < b; ++a) {
        const double v = best[c - 1][a] + cost(a, b);
        if (v < best[c][b]) {
          best[c][b] = v;
          from[c][b] = a;
        }
      }
    }
  }
  std::vector<int> cluster(n, 0);
  std::size_t end = n;
  for (std::size_t c = clusters; c-- > 0;) {
    const std::size_t begin = c == 0 ? 0 : from[c][end];
    for (std::size_t i = begin; i < end; ++i) {
      cluster[order[i]] = static_cast<int>(c);
    }
    end = begin;
  }
  return cluster;
}

}  // namespace terse::topology::detail

// Helpers of the gossip tests: seeded starting vectors and a way to run a
// gossip collective on W threads and collect every rank's values.
#pragma once

#include <terse/collective/gossip.hpp>
#include <terse/core/philox.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gossip_test {

/// A reproducible value in [-1, 1) for (rank, element).
inline double start_value(int rank, std::size_t i, std::uint64_t seed = 11)
{
  const terse::random_stream stream{seed, static_cast<std::uint32_t>(rank), 0};
  const terse::philox_counter bits = stream.block(i);
  return static_cast<double>(bits.word[0]) / 2147483648.0 - 1.0;
}

template <class V>
std::vector<V> start_vector(int rank, std::size_t n, std::uint64_t seed = 11)
{
  std::vector<V> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = static_cast<V>(start_value(rank, i, seed));
  }
  return x;
}

/// The mean over ranks of the starting vectors, in double.
inline std::vector<double> start_mean(int world, std::size_t n, std::uint64_t seed = 11)
{
  std::vector<double> mean(n, 0.0);
  for (int r = 0; r < world; ++r) {
    for (std::size_t i = 0; i < n; ++i) {
      mean[i] += start_value(r, i, seed);
    }
  }
  for (double& m : mean) {
    m /= world;
  }
  return mean;
}

inline double max_abs(const std::vector<double>& v)
{
  double m = 0;
  for (double x : v) {
    m = std::max(m, std::abs(x));
  }
  return m;
}

/// max_i |mean over ranks of x_i - mean0_i|: how far the ranks' mean has
/// moved (a collective: every rank calls it; `scratch` holds the mean).
template <class Transport>
double mean_drift(Transport& t, const std::vector<double>& x, const std::vector<double>& mean0,
                  std::vector<double>& scratch)
{
  scratch = x;
  t.allreduce(terse::host_span<double>(scratch), terse::reduce_op::average);
  double drift = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    drift = std::max(drift, std::abs(scratch[i] - mean0[i]));
  }
  return drift;
}

}  // namespace gossip_test

// A small trainer for the schedule tests: W ranks minimise their own convex
// quadratic f_i(x) = ½ Σ_j a_ij (x_j − c_ij)² with noisy gradients drawn
// from Philox (the same on every run), calling the collective's two hooks as
// a real trainer does. The optimum of F = mean_i f_i is x*_j =
// Σ_i a_ij c_ij / Σ_i a_ij. When every rank shares the curvature, local SGD
// has no client-drift bias and every schedule should reach x*; rank-specific
// curvature adds the bias that frequent averaging keeps small.
#pragma once

#include <terse/collective/allreduce.hpp>
#include <terse/core/philox.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace schedule_harness {

struct quadratic {
  std::size_t n = 32;
  int world = 4;
  std::vector<std::vector<double>> curvature;  // a_ij, rank-major
  std::vector<std::vector<double>> centre;     // c_ij, rank-major
  double noise = 0.0;                          // gradient noise (standard deviation)
  std::uint64_t seed = 7;

  /// Centres c + heterogeneity·u_i with c and u_i uniform in [-1, 1);
  /// curvature a·(1 + curvature_spread·v_i), a uniform in [0.5, 1.5) and v_i
  /// uniform in [-1, 1).
  static quadratic make(std::size_t n, int world, double heterogeneity, double noise, double curvature_spread = 0.0,
                        std::uint64_t seed = 7)
  {
    quadratic q;
    q.n = n;
    q.world = world;
    q.noise = noise;
    q.seed = seed;
    const terse::random_stream shape{seed, 0, 0};
    std::vector<double> common(n), curvature(n);
    for (std::size_t j = 0; j < n; ++j) {
      curvature[j] = 0.5 + shape.uniform(2 * j);
      common[j] = 2.0 * shape.uniform(2 * j + 1) - 1.0;
    }
    q.centre.assign(static_cast<std::size_t>(world), std::vector<double>(n));
    q.curvature.assign(static_cast<std::size_t>(world), std::vector<double>(n));
    for (int r = 0; r < world; ++r) {
      const terse::random_stream own{seed, 1, static_cast<std::uint32_t>(r)};
      const auto i = static_cast<std::size_t>(r);
      for (std::size_t j = 0; j < n; ++j) {
        q.centre[i][j] = common[j] + heterogeneity * (2.0 * own.uniform(2 * j) - 1.0);
        q.curvature[i][j] = curvature[j] * (1.0 + curvature_spread * (2.0 * own.uniform(2 * j + 1) - 1.0));
      }
    }
    return q;
  }

  /// ∇f_rank(x) plus noise keyed by (rank, step), in float.
  void gradient(int rank, std::uint64_t step, const std::vector<float>& x, std::vector<float>& g) const
  {
    const terse::random_stream draw{seed + 1000, static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(rank)};
    g.resize(n);
    for (std::size_t j = 0; j < n; ++j) {
      // Sum of two uniforms, scaled to the wanted standard deviation.
      const double u = (draw.uniform(2 * j) + draw.uniform(2 * j + 1)) - 1.0;
      const double e = noise * u * 2.449489742783178;  // sd of (U + U − 1) is 1/√6
      const auto i = static_cast<std::size_t>(rank);
      g[j] = static_cast<float>(curvature[i][j] * (x[j] - centre[i][j]) + e);
    }
  }

  double local_loss(int rank, const std::vector<float>& x) const
  {
    const auto i = static_cast<std::size_t>(rank);
    double sum = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const double d = x[j] - centre[i][j];
      sum += 0.5 * curvature[i][j] * d * d;
    }
    return sum;
  }

  double global_loss(const std::vector<double>& x) const
  {
    double sum = 0;
    for (std::size_t i = 0; i < centre.size(); ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        const double d = x[j] - centre[i][j];
        sum += 0.5 * curvature[i][j] * d * d;
      }
    }
    return sum / world;
  }

  std::vector<double> optimum() const
  {
    std::vector<double> weighted(n, 0.0), weights(n, 0.0);
    for (std::size_t i = 0; i < centre.size(); ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        weighted[j] += curvature[i][j] * centre[i][j];
        weights[j] += curvature[i][j];
      }
    }
    for (std::size_t j = 0; j < n; ++j) {
      weighted[j] /= weights[j];
    }
    return weighted;
  }
};

/// The mean of the ranks' final models (what one more average would give).
inline std::vector<double> mean_model(const std::vector<std::vector<float>>& models)
{
  std::vector<double> mean(models.front().size(), 0.0);
  for (const auto& m : models) {
    for (std::size_t j = 0; j < m.size(); ++j) {
      mean[j] += static_cast<double>(m[j]) / static_cast<double>(models.size());
    }
  }
  return mean;
}

/// Plain SGD steps [from, to) on rank `rank`: backward, on_gradients,
/// x −= lr·g, observe_loss (when the schedule takes it), on_parameters.
/// Appends the steps at which the parameters were averaged to `synced`.
template <class Sync>
void train(Sync& sync, const quadratic& q, int rank, std::vector<float>& x, std::uint64_t from, std::uint64_t to,
           double lr, std::vector<std::uint64_t>& synced)
{
  std::vector<float> g;
  for (std::uint64_t step = from; step < to; ++step) {
    q.gradient(rank, step, x, g);
    sync.on_gradients(terse::host_span<float>(g));
    for (std::size_t j = 0; j < x.size(); ++j) {
      x[j] -= static_cast<float>(lr) * g[j];
    }
    if constexpr (requires { sync.schedule().observe_loss(0.0); }) {
      sync.schedule().observe_loss(q.local_loss(rank, x));
    }
    if (sync.on_parameters(terse::host_span<float>(x)) == terse::sync_action::average) {
      synced.push_back(step);
    }
  }
}

/// A layout with a dense segment between compressed ones (48 values).
inline const terse::layout& mixed_layout()
{
  static const std::vector<std::size_t> sizes{24, 4, 20};
  static const terse::layout shape(sizes, 32, /*dense_below=*/8);
  return shape;
}

/// k steps, save, load into a fresh collective, k steps gives the same
/// parameters and the same sync steps, bit for bit, as 2k steps, on every
/// rank. `make` builds the schedule; `start` calls schedule().start(x0).
template <class Compressor, class Feedback, class Schedule, class Make>
void check_replay(Make make, Compressor codec, int k, bool start, double lr = 0.1)
{
  using sync_t = terse::allreduce<Compressor, Feedback, terse::local_transport, Schedule>;
  constexpr int world = 3;
  const terse::layout& shape = mixed_layout();
  const quadratic q = quadratic::make(shape.total(), world, 0.3, 0.05);
  std::vector<std::vector<float>> straight(world), resumed(world);
  std::vector<std::vector<std::uint64_t>> straight_syncs(world), resumed_syncs(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    std::vector<float> x(shape.total(), 0.0f);
    sync_t a(t, shape, {}, codec, {}, make());
    if (start) {
      a.schedule().start(terse::host_span<const float>(x));
    }
    std::vector<std::uint64_t> synced;
    train(a, q, t.rank(), x, 0, static_cast<std::uint64_t>(k), lr, synced);
    std::ostringstream out;
    a.save(out);
    const std::string blob = out.str();
    std::vector<float> at_k = x;
    std::vector<std::uint64_t> synced_at_k = synced;
    train(a, q, t.rank(), x, static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(2 * k), lr, synced);
    straight[r] = x;
    straight_syncs[r] = synced;

    sync_t b(t, shape, {}, codec, {}, make());
    std::istringstream in(blob);
    b.load(in);
    x = at_k;
    train(b, q, t.rank(), x, static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(2 * k), lr, synced_at_k);
    resumed[r] = x;
    resumed_syncs[r] = synced_at_k;
  });
  for (std::size_t r = 0; r < world; ++r) {
    CHECK(resumed[r] == straight[r]);
    CHECK(resumed_syncs[r] == straight_syncs[r]);
    CHECK(straight_syncs[r] == straight_syncs[0]);  // every rank synced at the same steps
  }
  // The run must have exercised the schedule: at least one sync after the save.
  CHECK(!straight_syncs[0].empty());
  CHECK(straight_syncs[0].back() >= static_cast<std::uint64_t>(k));
}

}  // namespace schedule_harness

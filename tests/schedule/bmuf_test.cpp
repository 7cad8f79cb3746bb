// schedule::bmuf: equal to its base with η = 0 and ζ = 1, its update (both
// block momentum variants) by hand, state, and bad configurations.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/topk.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/bmuf.hpp>
#include <terse/schedule/event_triggered.hpp>
#include <terse/schedule/periodic.hpp>

#include <doctest/doctest.h>

#include <limits>
#include <vector>

#include "schedule_harness.hpp"

namespace {

using terse::host_span;
using terse::schedule::bmuf;
using terse::schedule::bmuf_config;
using terse::schedule::periodic;

static_assert(terse::concepts::schedule<bmuf<>>);
static_assert(terse::concepts::schedule<bmuf<terse::schedule::event_triggered>>);

template <class Schedule>
using dense_sync = terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport, Schedule>;

template <class Schedule, class Make>
std::pair<std::vector<std::vector<float>>, std::vector<std::uint64_t>> run_dense(const schedule_harness::quadratic& q,
                                                                                 Make make, std::uint64_t steps,
                                                                                 double lr, bool start)
{
  std::vector<std::vector<float>> models(static_cast<std::size_t>(q.world));
  std::vector<std::vector<std::uint64_t>> synced(static_cast<std::size_t>(q.world));
  terse::run_local(q.world, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    dense_sync<Schedule> sync(t, terse::layout::single(q.n), {}, {}, {}, make());
    std::vector<float> x(q.n, 0.0f);
    if constexpr (requires { sync.schedule().start(host_span<const float>(x)); }) {
      if (start) {
        sync.schedule().start(host_span<const float>(x));
      }
    }
    schedule_harness::train(sync, q, t.rank(), x, 0, steps, lr, synced[r]);
    models[r] = x;
  });
  for (const auto& s : synced) {
    CHECK(s == synced.front());
  }
  return {models, synced.front()};
}

}  // namespace

TEST_CASE("bmuf with block momentum 0 and block learning rate 1 is its base, bit for bit")
{
  const auto q = schedule_harness::quadratic::make(24, 3, 0.5, 0.1);
  const auto base = run_dense<periodic>(
      q, [] { return periodic(5); }, 40, 0.1, false);
  for (const bool nesterov : {false, true}) {
    for (const bool start : {false, true}) {
      const auto outer = run_dense<bmuf<>>(
          q, [&] { return bmuf<>(periodic(5), {.block_momentum = 0.0, .block_lr = 1.0, .nesterov = nesterov}); }, 40,
          0.1, start);
      CHECK(outer.second == base.second);
      CHECK(outer.first == base.first);
    }
  }
}

TEST_CASE("bmuf's update is G = xbar - x_s, D = eta D + zeta G, x0 = x0 + D, next block from x0 + eta D")
{
  constexpr int world = 2;
  constexpr std::size_t n = 3;
  constexpr double eta = 0.5;
  constexpr double zeta = 1.5;
  const auto step_of = [](int rank, int step, std::size_t j) {
    return 0.25f * static_cast<float>(rank + 1) - 0.125f * static_cast<float>(static_cast<int>(j) + step % 2);
  };
  for (const bool nesterov : {false, true}) {
    CAPTURE(nesterov);
    std::vector<std::vector<float>> global(world), update(world), params(world);
    terse::run_local(world, [&](terse::local_transport& t) {
      dense_sync<bmuf<>> sync(t, terse::layout::single(n), {}, {}, {},
                              bmuf<>(periodic(2), {.block_momentum = eta, .block_lr = zeta, .nesterov = nesterov}));
      std::vector<float> x{0.5f, -0.5f, 1.0f};
      sync.schedule().start(host_span<const float>(x));
      for (int step = 0; step < 8; ++step) {
        for (std::size_t j = 0; j < n; ++j) {
          x[j] += step_of(t.rank(), step, j);
        }
        sync.on_parameters(host_span<float>(x));
      }
      const auto r = static_cast<std::size_t>(t.rank());
      global[r].assign(sync.schedule().global_model().begin(), sync.schedule().global_model().end());
      update[r].assign(sync.schedule().block_update().begin(), sync.schedule().block_update().end());
      params[r] = x;
    });
    std::vector<double> x0{0.5, -0.5, 1.0}, d(n, 0.0), xs = x0;
    for (int block = 0; block < 4; ++block) {
      for (std::size_t j = 0; j < n; ++j) {
        double mean = 0;
        for (int r = 0; r < world; ++r) {
          double x = xs[j];
          for (int s = 2 * block; s < 2 * block + 2; ++s) {
            x += step_of(r, s, j);
          }
          mean += x / world;
        }
        const double g = mean - xs[j];
        d[j] = eta * d[j] + zeta * g;
        x0[j] += d[j];
        xs[j] = nesterov ? x0[j] + eta * d[j] : x0[j];
      }
    }
    for (int r = 0; r < world; ++r) {
      for (std::size_t j = 0; j < n; ++j) {
        CHECK(global[r][j] == doctest::Approx(x0[j]).epsilon(1e-6));
        CHECK(update[r][j] == doctest::Approx(d[j]).epsilon(1e-6));
        CHECK(params[r][j] == doctest::Approx(xs[j]).epsilon(1e-6));
      }
    }
  }
}

TEST_CASE("bmuf saves and restores bit for bit")
{
  schedule_harness::check_replay<terse::compress::qsgd<15>, terse::feedback::residual, bmuf<>>(
      [] { return bmuf<>(periodic(3), {.block_momentum = 0.5, .average_delta = true}); },
      terse::compress::qsgd<15>{.bucket = 16}, 10, true);
  schedule_harness::check_replay<terse::compress::topk, terse::feedback::residual,
                                 bmuf<terse::schedule::event_triggered>>(
      [] {
        return bmuf<terse::schedule::event_triggered>(terse::schedule::event_triggered({.threshold = 2.5}),
                                                      {.block_momentum = 0.5, .nesterov = false});
      },
      terse::compress::topk{.density = 0.25f}, 12, false);
}

TEST_CASE("bmuf rejects bad configurations")
{
  const auto invalid = [](bmuf_config c) {
    try {
      bmuf<> b(periodic(2), c);
    } catch (const terse::error& e) {
      return e.code() == terse::errc::invalid_argument;
    }
    return false;
  };
  CHECK(invalid({.block_momentum = -0.5}));
  CHECK(invalid({.block_momentum = 1.0}));
  CHECK(invalid({.block_lr = 0.0}));
  CHECK(invalid({.block_lr = std::numeric_limits<double>::infinity()}));
  CHECK_FALSE(invalid({}));
}

// schedule::slowmo: equal to its base with β = 0 and α = 1, its update by
// hand, composition with driving bases, state, and bad configurations.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/topk.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/adaptive_interval.hpp>
#include <terse/schedule/event_triggered.hpp>
#include <terse/schedule/fda.hpp>
#include <terse/schedule/periodic.hpp>
#include <terse/schedule/slowmo.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "schedule_harness.hpp"

namespace {

using terse::host_span;
using terse::schedule::periodic;
using terse::schedule::slowmo;
using terse::schedule::slowmo_config;

static_assert(terse::concepts::schedule<slowmo<>>);
static_assert(terse::concepts::schedule<slowmo<terse::schedule::fda>>);
static_assert(terse::concepts::schedule<slowmo<terse::schedule::adaptive_interval>>);
static_assert(terse::concepts::schedule<slowmo<terse::schedule::event_triggered>>);
// Over periodic the gradient hook only decides; over event_triggered it observes.
static_assert(terse::concepts::schedule_decides_gradients<slowmo<>>);
static_assert(!terse::concepts::schedule_decides_gradients<slowmo<terse::schedule::event_triggered>>);
static_assert(terse::concepts::schedule_observes_gradients<slowmo<terse::schedule::event_triggered>>);

template <class Schedule>
using dense_sync = terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport, Schedule>;

// Trains every rank with schedule `make()` and returns the final models
// and rank 0's sync steps.
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

TEST_CASE("slowmo with beta 0 and alpha 1 is its base, bit for bit")
{
  const auto q = schedule_harness::quadratic::make(24, 3, 0.5, 0.1);
  const auto base = run_dense<periodic>(
      q, [] { return periodic(5); }, 40, 0.1, false);
  for (const bool start : {false, true}) {
    const auto outer = run_dense<slowmo<>>(
        q, [] { return slowmo<>(periodic(5), {.alpha = 1.0, .beta = 0.0, .lr = 0.1}); }, 40, 0.1, start);
    CHECK(outer.second == base.second);
    CHECK(outer.first == base.first);
  }
  // Over FDA too.
  const auto make_fda = [] { return terse::schedule::fda({.threshold = 0.01}); };
  const auto fda_alone = run_dense<terse::schedule::fda>(q, make_fda, 40, 0.1, true);
  const auto fda_outer = run_dense<slowmo<terse::schedule::fda>>(
      q, [&] { return slowmo<terse::schedule::fda>(make_fda(), {.alpha = 1.0, .beta = 0.0, .lr = 0.1}); }, 40, 0.1,
      true);
  CHECK(fda_outer.second == fda_alone.second);
  CHECK(fda_outer.first == fda_alone.first);
  CHECK(fda_alone.second.size() >= 3);
}

TEST_CASE("slowmo's update is u = beta u + (x0 - xbar) / gamma, x0 = x0 - alpha gamma u, written out by hand")
{
  // Two ranks, four parameters; each step rank r adds v_r(t) (dyadic values,
  // so averages are exact). Every 3 steps the ranks average, then slowmo.
  constexpr int world = 2;
  constexpr std::size_t n = 4;
  constexpr double alpha = 0.75;
  constexpr double beta = 0.5;
  constexpr double gamma = 0.25;
  const auto step_of = [](int rank, int step, std::size_t j) {
    return 0.125f * static_cast<float>((rank + 1) * static_cast<int>(j + 1)) - 0.0625f * static_cast<float>(step % 3);
  };
  std::vector<std::vector<float>> outer(world), momentum(world), params(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    dense_sync<slowmo<>> sync(t, terse::layout::single(n), {}, {}, {},
                              slowmo<>(periodic(3), {.alpha = alpha, .beta = beta, .lr = gamma}));
    std::vector<float> x{1.0f, -1.0f, 0.5f, 2.0f};
    sync.schedule().start(host_span<const float>(x));
    for (int step = 0; step < 9; ++step) {
      for (std::size_t j = 0; j < n; ++j) {
        x[j] += step_of(t.rank(), step, j);
      }
      sync.on_parameters(host_span<float>(x));
    }
    const auto r = static_cast<std::size_t>(t.rank());
    outer[r].assign(sync.schedule().outer_iterate().begin(), sync.schedule().outer_iterate().end());
    momentum[r].assign(sync.schedule().momentum().begin(), sync.schedule().momentum().end());
    params[r] = x;
    CHECK(sync.schedule().outer_steps() == 3);
  });
  // By hand, in double.
  std::vector<double> x0{1.0, -1.0, 0.5, 2.0};
  std::vector<double> u(n, 0.0);
  for (int block = 0; block < 3; ++block) {
    for (std::size_t j = 0; j < n; ++j) {
      double mean = 0;
      for (int r = 0; r < world; ++r) {
        double x = x0[j];
        for (int s = 3 * block; s < 3 * block + 3; ++s) {
          x += step_of(r, s, j);
        }
        mean += x / world;
      }
      u[j] = beta * u[j] + (x0[j] - mean) / gamma;
      x0[j] = x0[j] - alpha * gamma * u[j];
    }
  }
  for (int r = 0; r < world; ++r) {
    for (std::size_t j = 0; j < n; ++j) {
      CHECK(outer[r][j] == doctest::Approx(x0[j]).epsilon(1e-6));
      CHECK(momentum[r][j] == doctest::Approx(u[j]).epsilon(1e-6));
      CHECK(params[r][j] == outer[r][j]);  // every rank continues from x0
    }
  }
}

TEST_CASE("slowmo forwards observe_loss and start to its base and composes with every driving schedule")
{
  constexpr int world = 3;
  const auto q = schedule_harness::quadratic::make(16, world, 0.3, 0.05);
  const auto adaptive = run_dense<slowmo<terse::schedule::adaptive_interval>>(
      q,
      [] {
        return slowmo<terse::schedule::adaptive_interval>(terse::schedule::adaptive_interval({.initial_period = 4}),
                                                          {.beta = 0.5, .lr = 0.1});
      },
      60, 0.1, true);
  CHECK(adaptive.second.size() >= 5);
  const auto event = run_dense<slowmo<terse::schedule::event_triggered>>(
      q,
      [] {
        return slowmo<terse::schedule::event_triggered>(
            terse::schedule::event_triggered(
                {.on = terse::schedule::event_config::signal::gradient_norm, .threshold = 4.0}),
            {.beta = 0.5, .lr = 0.1});
      },
      60, 0.1, true);
  CHECK(event.second.size() >= 5);
  // After an outer step the driving base measures from x0: FDA's x_last is
  // the outer iterate, so its next estimate starts from zero drift.
  terse::run_local(2, [&](terse::local_transport& t) {
    dense_sync<slowmo<terse::schedule::fda>> sync(
        t, terse::layout::single(3), {}, {}, {},
        slowmo<terse::schedule::fda>(terse::schedule::fda({.threshold = 0.0}), {.beta = 0.5, .lr = 0.5}));
    std::vector<float> x(3, 0.0f);
    sync.schedule().start(host_span<const float>(x));
    x[0] = t.rank() == 0 ? 1.0f : 0.0f;
    REQUIRE(sync.on_parameters(host_span<float>(x)) == terse::sync_action::average);
    REQUIRE(sync.on_parameters(host_span<float>(x)) == terse::sync_action::skip);  // no drift since
    CHECK(sync.schedule().base().last_estimate() == 0.0);
  });
}

TEST_CASE("slowmo saves and restores bit for bit, over local SGD with QSGD and over FDA with top-k")
{
  schedule_harness::check_replay<terse::compress::qsgd<15>, terse::feedback::residual, slowmo<>>(
      [] { return slowmo<>(periodic(3), {.beta = 0.6, .lr = 0.1, .average_delta = true}); },
      terse::compress::qsgd<15>{.bucket = 16}, 10, true);
  schedule_harness::check_replay<terse::compress::qsgd<15>, terse::feedback::residual, slowmo<>>(
      [] { return slowmo<>(periodic(3), {.beta = 0.6, .lr = 0.1}); }, terse::compress::qsgd<15>{.bucket = 16}, 10,
      false);
  schedule_harness::check_replay<terse::compress::topk, terse::feedback::residual, slowmo<terse::schedule::fda>>(
      [] { return slowmo<terse::schedule::fda>(terse::schedule::fda({.threshold = 0.05}), {.beta = 0.6, .lr = 0.1}); },
      terse::compress::topk{.density = 0.25f}, 12, true);
}

TEST_CASE("slowmo with average_delta and top-k averages the drift, not the model")
{
  // Top-k at 25% of a model drops three quarters of it at every average
  // (feedback brings it back later); of the delta from x0 it loses little.
  constexpr int world = 3;
  const auto q = schedule_harness::quadratic::make(48, world, 0.3, 0.02);
  const auto excess = [&](bool average_delta) {
    std::vector<std::vector<float>> models(world);
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::allreduce<terse::compress::topk, terse::feedback::residual, terse::local_transport, slowmo<>> sync(
          t, terse::layout::single(q.n), {}, {.density = 0.25f}, {},
          slowmo<>(periodic(4), {.beta = 0.3, .lr = 0.1, .average_delta = average_delta}));
      std::vector<float> x(q.n, 0.0f);
      sync.schedule().start(host_span<const float>(x));
      std::vector<std::uint64_t> synced;
      schedule_harness::train(sync, q, t.rank(), x, 0, 400, 0.1, synced);
      models[static_cast<std::size_t>(t.rank())] = x;
    });
    return q.global_loss(schedule_harness::mean_model(models)) - q.global_loss(q.optimum());
  };
  const double initial = q.global_loss(std::vector<double>(q.n, 0.0)) - q.global_loss(q.optimum());
  const double of_delta = excess(true);
  const double of_model = excess(false);
  MESSAGE("slowmo + top-k 25%, excess loss from " << initial << ": averaging the delta " << of_delta
                                                  << ", averaging the model " << of_model);
  CHECK(of_delta < 3e-3 * initial);
  CHECK(of_delta * 10 < of_model);
}

TEST_CASE("slowmo rejects bad configurations")
{
  const auto invalid = [](slowmo_config c) {
    try {
      slowmo<> s(periodic(2), c);
    } catch (const terse::error& e) {
      return e.code() == terse::errc::invalid_argument;
    }
    return false;
  };
  CHECK(invalid({.alpha = 0.0}));
  CHECK(invalid({.alpha = std::numeric_limits<double>::infinity()}));
  CHECK(invalid({.beta = -0.1}));
  CHECK(invalid({.beta = 1.0}));
  CHECK(invalid({.lr = 0.0}));
  CHECK(invalid({.lr = std::numeric_limits<double>::quiet_NaN()}));
  slowmo<> s;
  CHECK_THROWS_AS(s.set_lr(-1.0), terse::error);
  s.set_lr(0.01);
  CHECK(s.config().lr == 0.01);
  std::ostringstream text;
  text << s;
  CHECK(text.str() == "slowmo{alpha=1, beta=0.5, lr=0.01, average_delta=0} over periodic{H=8}");
}

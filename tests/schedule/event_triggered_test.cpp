// schedule::event_triggered: the trigger on scripted drifts and gradient
// norms, the adapting threshold, the periods, monitoring bytes, state, and
// bad configurations.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/topk.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/event_triggered.hpp>
#include <terse/transport/detail/partition.hpp>
#include <terse/transport/metered.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "schedule_harness.hpp"

namespace {

using terse::host_span;
using terse::schedule::event_config;
using terse::schedule::event_triggered;

static_assert(terse::concepts::schedule<event_triggered>);
static_assert(terse::concepts::schedule_observes_gradients<event_triggered>);

using dense_sync =
    terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport, event_triggered>;

// Runs `steps` steps in which rank r moves its model by speed(step)·(r + 1)
// along coordinate r (drift of rank r after k steps: k·speed·(r + 1)), or,
// for the gradient signal, sees a gradient of that norm. Returns rank 0's
// sync steps (checked equal on all ranks).
template <class Speed>
std::vector<int> run_scripted(event_config config, int world, int steps, Speed speed,
                              std::vector<double>* thresholds = nullptr)
{
  std::vector<std::vector<int>> synced(static_cast<std::size_t>(world));
  std::vector<std::vector<double>> taus(static_cast<std::size_t>(world));
  terse::run_local(world, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    dense_sync sync(t, terse::layout::single(static_cast<std::size_t>(world)), {}, {}, {}, event_triggered(config));
    std::vector<float> x(static_cast<std::size_t>(world), 0.0f);
    sync.schedule().start(host_span<const float>(x));
    for (int step = 0; step < steps; ++step) {
      const float move = static_cast<float>(speed(step) * static_cast<double>(t.rank() + 1));
      std::vector<float> g(x.size(), 0.0f);
      g[r] = move;
      sync.on_gradients(host_span<float>(g));
      x[r] += move;
      if (sync.on_parameters(host_span<float>(x)) == terse::sync_action::average) {
        synced[r].push_back(step);
        taus[r].push_back(sync.schedule().threshold_now());
      }
    }
  });
  for (std::size_t r = 1; r < synced.size(); ++r) {
    CHECK(synced[r] == synced[0]);
    CHECK(taus[r] == taus[0]);
  }
  if (thresholds != nullptr) {
    *thresholds = taus[0];
  }
  return synced[0];
}

}  // namespace

TEST_CASE("the drift trigger fires when max drift crosses threshold times the calibrated rate")
{
  // Rank 1 drifts fastest: 2·speed per step. threshold 2.2: the first
  // interval lasts ceil(2.2) = 3 steps and calibrates rho = 2·speed; then a
  // sync fires once k·2·speed > 2.2·rho, at k = 3 while speed holds and at
  // k = 5 once it halves (adapt = 0 keeps rho).
  const auto speed = [](int step) { return step < 12 ? 0.5 : 0.25; };
  for (const auto signal : {event_config::signal::model_drift, event_config::signal::gradient_norm}) {
    std::vector<double> taus;
    const std::vector<int> synced = run_scripted({.on = signal, .threshold = 2.2, .adapt = 0.0}, 2, 30, speed, &taus);
    CHECK(synced == std::vector<int>{2, 5, 8, 11, 16, 21, 26});
    for (const double tau : taus) {
      CHECK(tau == doctest::Approx(2.2 * 1.0));
    }
  }
}

TEST_CASE("with adapt 1 the threshold follows the latest interval's rate")
{
  // After the first slow interval (5 steps at half speed) rho halves, and
  // the period returns to 3.
  const auto speed = [](int step) { return step < 12 ? 0.5 : 0.25; };
  std::vector<double> taus;
  const std::vector<int> synced = run_scripted({.threshold = 2.2, .adapt = 1.0}, 2, 30, speed, &taus);
  // Interval 12..16 runs at half speed: rate = 5·0.5/5 = 0.5, tau = 1.1.
  CHECK(synced == std::vector<int>{2, 5, 8, 11, 16, 19, 22, 25, 28});
  CHECK(taus[3] == doctest::Approx(2.2));
  CHECK(taus[4] == doctest::Approx(1.1));
}

TEST_CASE("event_triggered honours min and max periods and monitors one double per checked step")
{
  constexpr int world = 3;
  using metered_t = terse::metered<terse::local_transport&>;
  terse::run_local(world, [&](terse::local_transport& t) {
    metered_t m(t);
    // A huge threshold: after calibration (4 steps) only max_period (7) fires.
    terse::allreduce<terse::compress::topk, terse::feedback::residual, metered_t, event_triggered> sync(
        m, terse::layout::single(6), {}, {.density = 0.5f}, {},
        event_triggered({.threshold = 3.5, .min_period = 2, .max_period = 7}));
    std::vector<float> x(6, 0.0f);
    sync.schedule().start(host_span<const float>(x));
    std::vector<int> synced;
    for (int step = 0; step < 30; ++step) {
      // Fast for the calibration interval, then (nearly) still.
      x[static_cast<std::size_t>(t.rank())] += step < 4 ? 1.0f : 1e-6f;
      if (sync.on_parameters(host_span<float>(x)) == terse::sync_action::average) {
        synced.push_back(step);
      }
    }
    CHECK(synced == std::vector<int>{3, 10, 17, 24});
    // Monitored: step 3 (end of calibration), then steps 2..7 of each later
    // interval (6 per interval, 3 intervals), then steps 2..5 of the last.
    const std::uint64_t checks = 1 + 3 * 6 + 4;
    const std::size_t own = terse::detail::block_of(1, world, t.rank()).count;
    CHECK(m.counts(terse::verb::allreduce).calls == checks);
    CHECK(m.counts(terse::verb::allreduce).bytes_sent == checks * 2 * (1 - own) * sizeof(double));
  });
}

TEST_CASE("event_triggered decides the same on every rank from different data, and saves and restores bit for bit")
{
  schedule_harness::check_replay<terse::compress::topk, terse::feedback::residual, event_triggered>(
      [] { return event_triggered({.threshold = 2.5, .adapt = 0.5}); }, terse::compress::topk{.density = 0.25f}, 12,
      true);
  schedule_harness::check_replay<terse::compress::qsgd<15>, terse::feedback::residual, event_triggered>(
      [] { return event_triggered({.on = event_config::signal::gradient_norm, .threshold = 3.0}); },
      terse::compress::qsgd<15>{.bucket = 16}, 12, false);
}

TEST_CASE("event_triggered: a non-finite drift on one rank raises non_finite on every rank")
{
  constexpr int world = 2;
  int raised = 0;
  std::mutex lock;
  terse::run_local(world, [&](terse::local_transport& t) {
    dense_sync sync(t, terse::layout::single(3), {}, {}, {}, event_triggered({.threshold = 1.0}));
    std::vector<float> x(3, 0.0f);
    sync.schedule().start(host_span<const float>(x));
    x[1] = t.rank() == 0 ? std::numeric_limits<float>::infinity() : 1.0f;
    try {
      sync.on_parameters(host_span<float>(x));
    } catch (const terse::error& e) {
      const std::lock_guard guard(lock);
      raised += e.code() == terse::errc::non_finite ? 1 : 0;
    }
  });
  CHECK(raised == world);
}

TEST_CASE("event_triggered rejects bad configurations")
{
  const auto invalid = [](event_config c) {
    try {
      event_triggered e(c);
    } catch (const terse::error& e) {
      return e.code() == terse::errc::invalid_argument;
    }
    return false;
  };
  CHECK(invalid({.threshold = 0.0}));
  CHECK(invalid({.threshold = std::numeric_limits<double>::infinity()}));
  CHECK(invalid({.adapt = -0.1}));
  CHECK(invalid({.adapt = 1.5}));
  CHECK(invalid({.min_period = 0}));
  CHECK(invalid({.min_period = 5, .max_period = 4}));
  CHECK(invalid({.on = static_cast<event_config::signal>(3)}));
  CHECK_FALSE(invalid({}));
}

// schedule::adaptive_interval: AdaComm's period formula and the
// loss-progress rule on scripted losses, decisions shared by all ranks,
// monitoring bytes, state, and bad configurations.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/topk.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/adaptive_interval.hpp>
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
using terse::schedule::adaptive_config;
using terse::schedule::adaptive_interval;

static_assert(terse::concepts::schedule<adaptive_interval>);

using dense_sync =
    terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport, adaptive_interval>;

// Rank r's scripted loss at step t.
using loss_script = double (*)(int rank, int step);

struct scripted_run {
  std::vector<std::vector<int>> synced;             // per rank
  std::vector<std::vector<std::uint64_t>> periods;  // H after each sync, per rank
};

scripted_run run_script(adaptive_config config, int world, int steps, loss_script loss)
{
  scripted_run out{std::vector<std::vector<int>>(static_cast<std::size_t>(world)),
                   std::vector<std::vector<std::uint64_t>>(static_cast<std::size_t>(world))};
  terse::run_local(world, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    dense_sync sync(t, terse::layout::single(4), {}, {}, {}, adaptive_interval(config));
    std::vector<float> x(4, 0.0f);
    sync.schedule().start(host_span<const float>(x));
    for (int step = 0; step < steps; ++step) {
      x[0] += 0.25f * static_cast<float>(t.rank());
      sync.schedule().observe_loss(loss(t.rank(), step));
      if (sync.on_parameters(host_span<float>(x)) == terse::sync_action::average) {
        out.synced[r].push_back(step);
        out.periods[r].push_back(sync.schedule().period());
      }
    }
  });
  for (std::size_t r = 1; r < out.synced.size(); ++r) {
    CHECK(out.synced[r] == out.synced[0]);
    CHECK(out.periods[r] == out.periods[0]);
  }
  return out;
}

// The rule written out: the interval's loss is the mean over ranks and steps.
std::vector<int> expected_syncs(adaptive_config config, int world, int steps, loss_script loss)
{
  std::vector<int> syncs;
  std::uint64_t period = config.initial_period;
  double first = 0;
  double previous = 0;
  bool seen = false;
  int since = 0;
  double sum = 0;
  int count = 0;
  for (int step = 0; step < steps; ++step) {
    for (int r = 0; r < world; ++r) {
      sum += loss(r, step);
    }
    count += world;
    if (static_cast<std::uint64_t>(++since) < period) {
      continue;
    }
    syncs.push_back(step);
    const double f = sum / count;
    if (!seen) {
      first = f;
      seen = true;
    } else if (config.which == adaptive_config::rule::adacomm) {
      period = std::min<std::uint64_t>(
          config.max_period,
          std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(
                                         std::sqrt(f / first) * static_cast<double>(config.initial_period)))));
    } else if ((previous - f) / std::abs(previous) < config.progress_tolerance) {
      period = std::min(config.max_period, 2 * period);
    }
    previous = f;
    since = 0;
    sum = 0;
    count = 0;
  }
  return syncs;
}

double falling_loss(int rank, int step)
{
  return (1.0 + 0.1 * rank) * 3.0 * std::exp(-0.004 * step) + 0.01;
}
double plateau_loss(int rank, int step)
{
  return 0.5 + 0.05 * rank + 2.0 * std::exp(-step / 10.0);
}

}  // namespace

TEST_CASE("adacomm sets H to ceil(sqrt(F / F0) * H0) from the loss averaged across ranks")
{
  const adaptive_config config{.initial_period = 16, .max_period = 64};
  const scripted_run run = run_script(config, 3, 600, falling_loss);
  const std::vector<int> expected = expected_syncs(config, 3, 600, falling_loss);
  CHECK(run.synced[0] == expected);
  // The loss falls, so AdaComm's period shrinks (never grows).
  REQUIRE(run.periods[0].size() >= 10);
  for (std::size_t i = 1; i < run.periods[0].size(); ++i) {
    CHECK(run.periods[0][i] <= run.periods[0][i - 1]);
  }
  CHECK(run.periods[0].front() == 16);
  CHECK(run.periods[0].back() < 10);
}

TEST_CASE("the loss-progress rule grows the interval as the loss stops falling")
{
  const adaptive_config config{
      .initial_period = 2, .max_period = 32, .which = adaptive_config::rule::loss_progress, .progress_tolerance = 0.05};
  const scripted_run run = run_script(config, 2, 400, plateau_loss);
  CHECK(run.synced[0] == expected_syncs(config, 2, 400, plateau_loss));
  const auto& periods = run.periods[0];
  REQUIRE(periods.size() >= 6);
  for (std::size_t i = 1; i < periods.size(); ++i) {
    CHECK(periods[i] >= periods[i - 1]);  // frequent early, sparser later
  }
  // Early the loss falls fast: several syncs at the initial period.
  CHECK(periods[0] == 2);
  CHECK(periods[3] == 2);
  CHECK(periods.back() == 32);
}

TEST_CASE("adaptive_interval without observed losses keeps its period, and monitors two doubles per sync")
{
  constexpr int world = 3;
  using metered_t = terse::metered<terse::local_transport&>;
  terse::run_local(world, [&](terse::local_transport& t) {
    metered_t m(t);
    terse::allreduce<terse::compress::topk, terse::feedback::residual, metered_t, adaptive_interval> sync(
        m, terse::layout::single(8), {}, {.density = 0.5f}, {}, adaptive_interval({.initial_period = 5}));
    std::vector<float> x(8, 0.0f);
    sync.schedule().start(host_span<const float>(x));
    int syncs = 0;
    for (int step = 0; step < 20; ++step) {
      x[static_cast<std::size_t>(step) % 8] += 1.0f;
      if (sync.on_parameters(host_span<float>(x)) == terse::sync_action::average) {
        CHECK(step % 5 == 4);
        ++syncs;
      }
    }
    CHECK(syncs == 4);
    CHECK(sync.schedule().period() == 5);
    const std::size_t own = terse::detail::block_of(2, world, t.rank()).count;
    CHECK(m.counts(terse::verb::allreduce).calls == 4);
    CHECK(m.counts(terse::verb::allreduce).bytes_sent == 4 * 2 * (2 - own) * sizeof(double));
  });
}

TEST_CASE("adaptive_interval averages the model delta and saves and restores bit for bit")
{
  for (const auto rule : {adaptive_config::rule::adacomm, adaptive_config::rule::loss_progress}) {
    const auto make = [rule] {
      return adaptive_interval({.initial_period = 3, .max_period = 8, .which = rule, .progress_tolerance = 0.2});
    };
    schedule_harness::check_replay<terse::compress::topk, terse::feedback::residual, adaptive_interval>(
        make, terse::compress::topk{.density = 0.25f}, 14, true);
    schedule_harness::check_replay<terse::compress::qsgd<15>, terse::feedback::residual, adaptive_interval>(
        make, terse::compress::qsgd<15>{.bucket = 16}, 14, false);
  }
}

TEST_CASE("adaptive_interval: a non-finite loss on one rank raises non_finite on every rank at the sync")
{
  constexpr int world = 3;
  int raised = 0;
  std::mutex lock;
  terse::run_local(world, [&](terse::local_transport& t) {
    dense_sync sync(t, terse::layout::single(2), {}, {}, {}, adaptive_interval({.initial_period = 2}));
    std::vector<float> x(2, 0.0f);
    sync.schedule().start(host_span<const float>(x));
    sync.schedule().observe_loss(1.0);
    CHECK(sync.on_parameters(host_span<float>(x)) == terse::sync_action::skip);
    sync.schedule().observe_loss(t.rank() == 2 ? std::numeric_limits<double>::infinity() : 1.0);
    try {
      sync.on_parameters(host_span<float>(x));
    } catch (const terse::error& e) {
      const std::lock_guard guard(lock);
      raised += e.code() == terse::errc::non_finite ? 1 : 0;
    }
  });
  CHECK(raised == world);
}

TEST_CASE("adaptive_interval rejects bad configurations")
{
  const auto invalid = [](adaptive_config c) {
    try {
      adaptive_interval a(c);
    } catch (const terse::error& e) {
      return e.code() == terse::errc::invalid_argument;
    }
    return false;
  };
  CHECK(invalid({.initial_period = 0}));
  CHECK(invalid({.initial_period = 8, .max_period = 4}));
  CHECK(invalid({.progress_tolerance = -0.1}));
  CHECK(invalid({.progress_tolerance = std::numeric_limits<double>::quiet_NaN()}));
  CHECK(invalid({.which = static_cast<adaptive_config::rule>(9)}));
  CHECK_FALSE(invalid({}));
}

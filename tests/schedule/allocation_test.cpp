// The schedules' hot paths allocate nothing after the first step: buffers
// are sized once. Counted with a replaced global operator new, on this
// thread only, around steps that monitor and sync through an averager that
// allocates nothing itself (one rank: average and monitor are identities).
#include <terse/schedule/adaptive_interval.hpp>
#include <terse/schedule/bmuf.hpp>
#include <terse/schedule/event_triggered.hpp>
#include <terse/schedule/fda.hpp>
#include <terse/schedule/periodic.hpp>
#include <terse/schedule/slowmo.hpp>

#include <doctest/doctest.h>

#include <vector>

#include "counting_new.hpp"

using counting_new::allocations;
using counting_new::counting;

namespace {

using terse::host_span;
namespace ts = terse::schedule;

struct quiet_averager {
  void average(host_span<float>) noexcept {}
  void monitor(host_span<double>, terse::reduce_op) noexcept {}
  int rank() const noexcept { return 0; }
  int size() const noexcept { return 1; }
};

// Runs `steps` steps; returns (allocations after the first two, syncs).
template <class Schedule>
std::pair<long, int> count_allocations(Schedule& schedule, bool start)
{
  constexpr std::size_t n = 300;
  std::vector<float> x(n, 0.0f), g(n, 0.0f);
  if (start) {
    schedule.start(host_span<const float>(x));
  }
  quiet_averager averager;
  int syncs = 0;
  long counted = 0;
  for (std::uint64_t step = 0; step < 60; ++step) {
    for (std::size_t j = 0; j < n; ++j) {
      g[j] = 0.01f * static_cast<float>((j * 7 + step * 3) % 11) - 0.05f;
      x[j] -= g[j];
    }
    counting = step >= 2;
    allocations = 0;
    const terse::step_context ctx{step};
    if constexpr (requires { schedule.on_gradients(ctx, host_span<float>(g), averager); }) {
      schedule.on_gradients(ctx, host_span<float>(g), averager);
    }
    if constexpr (requires { schedule.observe_loss(1.0); }) {
      schedule.observe_loss(1.0 / static_cast<double>(step + 1));
    }
    syncs += schedule.on_parameters(ctx, host_span<float>(x), averager) == terse::sync_action::average ? 1 : 0;
    counting = false;
    counted += allocations;
  }
  return {counted, syncs};
}

}  // namespace

TEST_CASE("schedules allocate nothing after their first steps")
{
  REQUIRE(counting_new::counter_works());

  const auto check = [](auto schedule, bool start, int min_syncs) {
    const std::pair<long, int> counted = count_allocations(schedule, start);
    CHECK(counted.first == 0);
    CHECK(counted.second >= min_syncs);
  };
  for (const bool start : {true, false}) {
    CAPTURE(start);
    check(ts::fda({.threshold = 0.0, .estimator = ts::fda_estimator::linear}), start, 10);
    check(ts::fda({.threshold = 0.0, .estimator = ts::fda_estimator::sketch}), start, 1);
    check(ts::fda({.threshold = 0.0, .estimator = ts::fda_estimator::naive}), start, 0);  // one rank: Var = 0
    check(ts::event_triggered({.threshold = 2.0}), start, 10);
    check(ts::event_triggered({.on = ts::event_config::signal::gradient_norm, .threshold = 2.0}), start, 10);
    check(ts::adaptive_interval({.initial_period = 2, .max_period = 4}), start, 10);
    check(ts::adaptive_interval({.initial_period = 2, .which = ts::adaptive_config::rule::loss_progress}), start, 3);
    check(ts::slowmo<>(ts::periodic(3), {.average_delta = true}), start, 10);
    check(ts::slowmo<>(ts::periodic(3)), start, 10);
    check(ts::bmuf<>(ts::periodic(3), {.average_delta = true}), start, 10);
    check(ts::bmuf<ts::fda>(ts::fda({.threshold = 0.0})), start, 10);
    check(ts::slowmo<ts::event_triggered>(ts::event_triggered({.threshold = 2.0})), start, 10);
  }
}

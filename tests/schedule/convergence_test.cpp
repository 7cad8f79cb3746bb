// Every schedule reaches the optimum of a convex quadratic that synchronous
// SGD reaches, within a bound, on ranks with different data (centres and
// curvature), with noisy gradients; with a lossy codec on the delta too.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/topk.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/adaptive_interval.hpp>
#include <terse/schedule/bmuf.hpp>
#include <terse/schedule/event_triggered.hpp>
#include <terse/schedule/every_step.hpp>
#include <terse/schedule/fda.hpp>
#include <terse/schedule/periodic.hpp>
#include <terse/schedule/slowmo.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "schedule_harness.hpp"

namespace {

using terse::host_span;
namespace ts = terse::schedule;

constexpr int world = 4;
constexpr std::size_t n = 32;
constexpr std::uint64_t steps = 800;
constexpr double lr = 0.05;

const schedule_harness::quadratic& problem()
{
  static const auto q = schedule_harness::quadratic::make(n, world, 0.3, 0.05, 0.2);
  return q;
}

struct outcome {
  double excess = 0;      // F(mean model) − F*
  double distance = 0;    // ‖mean model − x*‖
  std::size_t syncs = 0;  // parameter averages (rank 0; all ranks agree)
};

template <class Compressor, class Feedback, class Schedule>
outcome train(Schedule schedule, Compressor codec = {})
{
  const auto& q = problem();
  std::vector<std::vector<float>> models(world);
  std::vector<std::vector<std::uint64_t>> synced(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    terse::allreduce<Compressor, Feedback, terse::local_transport, Schedule> sync(t, terse::layout::single(n), {},
                                                                                  codec, {}, schedule);
    std::vector<float> x(n, 0.0f);
    if constexpr (requires { sync.schedule().start(host_span<const float>(x)); }) {
      sync.schedule().start(host_span<const float>(x));
    }
    schedule_harness::train(sync, q, t.rank(), x, 0, steps, lr, synced[r]);
    models[r] = x;
  });
  for (const auto& s : synced) {
    CHECK(s == synced.front());
  }
  const std::vector<double> mean = schedule_harness::mean_model(models);
  const std::vector<double> best = q.optimum();
  double squares = 0;
  for (std::size_t j = 0; j < n; ++j) {
    squares += (mean[j] - best[j]) * (mean[j] - best[j]);
  }
  return {q.global_loss(mean) - q.global_loss(best), std::sqrt(squares), synced.front().size()};
}

template <class Schedule>
outcome train_dense(Schedule schedule)
{
  return train<terse::compress::identity, terse::feedback::none>(std::move(schedule));
}

}  // namespace

TEST_CASE("every schedule reaches the optimum synchronous SGD reaches, within a bound")
{
  const auto& q = problem();
  const double initial = q.global_loss(std::vector<double>(n, 0.0)) - q.global_loss(q.optimum());
  const outcome sync_sgd = train_dense(ts::every_step{});
  MESSAGE("initial excess loss " << initial << "; synchronous SGD: excess " << sync_sgd.excess << ", distance "
                                 << sync_sgd.distance);
  CHECK(sync_sgd.excess < 1e-3 * initial);

  // Local steps on different curvatures bias the average a little; momentum
  // and noise move it around the same optimum. A lossy codec on the delta
  // holds part of every rank's drift back in its residual (fed back later),
  // so the consensus model sits a little further out.
  const auto report = [&](const std::string& name, const outcome& o, double looser = 1.0) {
    MESSAGE(name << ": excess " << o.excess << ", distance " << o.distance << ", syncs " << o.syncs);
    CHECK(o.excess <= looser * (4.0 * sync_sgd.excess + 2e-4 * initial));
    CHECK(o.distance <= looser * 0.05);
    CHECK(o.syncs >= 1);
  };
  report("periodic H=8", train_dense(ts::periodic(8)));
  report("adaptive_interval adacomm", train_dense(ts::adaptive_interval({.initial_period = 8})));
  report("adaptive_interval loss_progress",
         train_dense(ts::adaptive_interval(
             {.initial_period = 2, .max_period = 32, .which = ts::adaptive_config::rule::loss_progress})));
  report("event_triggered drift", train_dense(ts::event_triggered({.threshold = 8.0})));
  report("event_triggered gradient norm",
         train_dense(ts::event_triggered({.on = ts::event_config::signal::gradient_norm, .threshold = 8.0})));
  report("fda linear", train_dense(ts::fda({.threshold = 0.05})));
  report("fda sketch", train_dense(ts::fda({.threshold = 0.05, .estimator = ts::fda_estimator::sketch})));
  report("slowmo over periodic H=8", train_dense(ts::slowmo<>(ts::periodic(8), {.beta = 0.5, .lr = lr})));
  report("slowmo over fda", train_dense(ts::slowmo<ts::fda>(ts::fda({.threshold = 0.05}), {.beta = 0.5, .lr = lr})));
  report("bmuf over periodic H=8", train_dense(ts::bmuf<>(ts::periodic(8), {.block_momentum = 0.5})));
  report("bmuf (classical) over periodic H=8",
         train_dense(ts::bmuf<>(ts::periodic(8), {.block_momentum = 0.5, .nesterov = false})));
  // Compositions: compressed deltas with residual feedback.
  report("fda + top-k 25% + residual",
         train<terse::compress::topk, terse::feedback::residual>(ts::fda({.threshold = 0.05}),
                                                                 terse::compress::topk{.density = 0.25f}),
         3.0);
  report("slowmo over periodic + qsgd<15> + residual (delta)",
         train<terse::compress::qsgd<15>, terse::feedback::residual>(
             ts::slowmo<>(ts::periodic(8), {.beta = 0.5, .lr = lr, .average_delta = true}),
             terse::compress::qsgd<15>{.bucket = 16}));
  report("adaptive_interval + top-k 25% + residual",
         train<terse::compress::topk, terse::feedback::residual>(ts::adaptive_interval({.initial_period = 8}),
                                                                 terse::compress::topk{.density = 0.25f}),
         3.0);
}

// schedule::fda: the estimators against the exact variance, the trigger,
// delta averaging, monitoring bytes, state, and FDA against periodic
// averaging on a quadratic where the ranks drift apart slowly.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/topk.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/fda.hpp>
#include <terse/schedule/periodic.hpp>
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
using terse::schedule::fda;
using terse::schedule::fda_config;
using terse::schedule::fda_estimator;
namespace sd = terse::schedule::detail;

static_assert(terse::concepts::schedule<fda>);
static_assert(terse::concepts::schedule_drives_parameters<
              fda, terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport, fda>>);

constexpr double infinity = std::numeric_limits<double>::infinity();

// W per-rank deltas: a shared drift plus rank-specific parts of random scale.
std::vector<std::vector<float>> random_deltas(const terse::random_stream& draw, int world, std::size_t n)
{
  const double shared_scale = 4.0 * draw.uniform(0);
  const double own_scale = 2.0 * draw.uniform(1);
  std::vector<std::vector<float>> deltas(static_cast<std::size_t>(world), std::vector<float>(n));
  for (std::size_t j = 0; j < n; ++j) {
    const double shared = shared_scale * (2.0 * draw.uniform(16 + j) - 1.0);
    for (int r = 0; r < world; ++r) {
      const double own = own_scale * (2.0 * draw.uniform(16 + n * static_cast<std::size_t>(r + 1) + j) - 1.0);
      deltas[static_cast<std::size_t>(r)][j] = static_cast<float>(shared + own);
    }
  }
  return deltas;
}

// The exact variance and ‖mean Δ‖², in long double.
struct exact_moments {
  long double variance = 0;
  long double mean_squared = 0;
};

exact_moments exact(const std::vector<std::vector<float>>& deltas)
{
  const std::size_t n = deltas.front().size();
  const auto w = static_cast<long double>(deltas.size());
  long double mean_norms = 0;
  long double mean_squared = 0;
  for (std::size_t j = 0; j < n; ++j) {
    long double mean = 0;
    for (const auto& d : deltas) {
      mean += d[j];
      mean_norms += static_cast<long double>(d[j]) * d[j] / w;
    }
    mean /= w;
    mean_squared += mean * mean;
  }
  return {mean_norms - mean_squared, mean_squared};
}

// Averages the ranks' states as the monitor does (sum in rank order, / W).
std::vector<double> average_states(const std::vector<std::vector<double>>& states)
{
  std::vector<double> mean(states.front().size(), 0.0);
  for (const auto& s : states) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      mean[i] += s[i];
    }
  }
  for (double& v : mean) {
    v /= static_cast<double>(states.size());
  }
  return mean;
}

std::vector<float> random_unit(const terse::random_stream& draw, std::size_t n)
{
  std::vector<double> v(n);
  double squares = 0;
  for (std::size_t j = 0; j < n; ++j) {
    v[j] = 2.0 * draw.uniform(j) - 1.0;
    squares += v[j] * v[j];
  }
  std::vector<float> unit(n);
  for (std::size_t j = 0; j < n; ++j) {
    unit[j] = static_cast<float>(v[j] / std::sqrt(squares));
  }
  return unit;
}

}  // namespace

TEST_CASE("fda naive estimate is the exact variance and linear is never below it")
{
  int trials = 0;
  for (const int world : {2, 3, 5, 8}) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{1000}}) {
      for (std::uint32_t trial = 0; trial < 25; ++trial) {
        const terse::random_stream draw{42, trial, static_cast<std::uint32_t>(world * 10000 + static_cast<int>(n))};
        const auto deltas = random_deltas(draw, world, n);
        // ξ: random, or (every third trial) along the mean, where linear is tight.
        std::vector<float> xi = random_unit(terse::random_stream{43, trial, static_cast<std::uint32_t>(n)}, n);
        std::vector<std::vector<double>> naive(deltas.size(), std::vector<double>(n + 1));
        std::vector<std::vector<double>> linear(deltas.size(), std::vector<double>(2));
        for (std::size_t r = 0; r < deltas.size(); ++r) {
          sd::fda_naive_state(host_span<const float>(deltas[r]), host_span<double>(naive[r]));
        }
        const std::vector<double> mean_naive = average_states(naive);
        if (trial % 3 == 0) {
          double norm = 0;
          for (std::size_t j = 0; j < n; ++j) {
            norm += mean_naive[j + 1] * mean_naive[j + 1];
          }
          for (std::size_t j = 0; j < n; ++j) {
            xi[j] = static_cast<float>(mean_naive[j + 1] / std::sqrt(norm));
          }
        }
        for (std::size_t r = 0; r < deltas.size(); ++r) {
          sd::fda_linear_state(host_span<const float>(deltas[r]), host_span<const float>(xi),
                               host_span<double>(linear[r]));
        }
        const exact_moments truth = exact(deltas);
        const double naive_estimate = sd::fda_naive_estimate(host_span<const double>(mean_naive));
        const double linear_estimate = sd::fda_linear_estimate(host_span<const double>(average_states(linear)));
        // Rounding of double sums of ‖Δ‖² and of a float ξ (unit to 1e-7).
        const double slack = 1e-12 * static_cast<double>(truth.variance + truth.mean_squared) +
                             3e-7 * static_cast<double>(truth.mean_squared);
        REQUIRE(naive_estimate == doctest::Approx(static_cast<double>(truth.variance))
                                      .epsilon(1e-9)
                                      .scale(static_cast<double>(truth.mean_squared)));
        REQUIRE(linear_estimate >= static_cast<double>(truth.variance) - slack);
        REQUIRE(linear_estimate >= naive_estimate - slack);
        if (trial % 3 == 0) {  // ξ along mean Δ: linear is exact
          REQUIRE(std::abs(linear_estimate - static_cast<double>(truth.variance)) <= slack);
        }
        ++trials;
      }
    }
  }
  CHECK(trials == 400);
}

TEST_CASE("the AMS sketch is linear and estimates a squared norm within its stated bound")
{
  constexpr std::uint32_t rows = 5;
  constexpr std::uint32_t columns = 250;
  const double epsilon = sd::ams_sketch_epsilon(columns);
  const double delta = sd::ams_sketch_failure_bound(rows, columns, epsilon);
  CHECK(epsilon == doctest::Approx(std::sqrt(8.0 / 250.0)));
  CHECK(delta == doctest::Approx(0.103515625));  // P(Bin(5, 1/4) ≥ 3)
  CHECK(sd::ams_sketch_failure_bound(1, 1, 0.01) == 1.0);

  // Linearity: sketch(a) + sketch(b) == sketch(a + b) (in double, exact on a dyadic grid).
  {
    std::vector<float> a(300), b(300), sum(300);
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = 0.25f * static_cast<float>(static_cast<int>(i % 17) - 8);
      b[i] = 0.5f * static_cast<float>(static_cast<int>(i % 5) - 2);
      sum[i] = a[i] + b[i];
    }
    std::vector<double> sa(rows * columns, 0.0), sb(rows * columns, 0.0), ssum(rows * columns, 0.0);
    sd::ams_sketch_add(9, rows, columns, host_span<const float>(a), host_span<double>(sa));
    sd::ams_sketch_add(9, rows, columns, host_span<const float>(b), host_span<double>(sb));
    sd::ams_sketch_add(9, rows, columns, host_span<const float>(sum), host_span<double>(ssum));
    for (std::size_t i = 0; i < sa.size(); ++i) {
      REQUIRE(sa[i] + sb[i] == ssum[i]);
    }
  }

  // The FDA sketch estimate over many random seeds and data: within
  // [Var, Var + 2ε/(1+ε)‖mean Δ‖²] except with probability at most δ.
  constexpr int trials = 400;
  constexpr int world = 4;
  constexpr std::size_t n = 2000;
  int outside = 0;
  int below = 0;
  std::vector<double> scratch(rows);
  for (std::uint32_t trial = 0; trial < trials; ++trial) {
    const auto deltas = random_deltas(terse::random_stream{77, trial, 0}, world, n);
    std::vector<std::vector<double>> states(world, std::vector<double>(1 + rows * columns));
    for (std::size_t r = 0; r < world; ++r) {
      sd::fda_sketch_state(host_span<const float>(deltas[r]), 1000 + trial, rows, columns,
                           host_span<double>(states[r]));
    }
    const double estimate = sd::fda_sketch_estimate(host_span<const double>(average_states(states)), rows, columns,
                                                    host_span<double>(scratch));
    const exact_moments truth = exact(deltas);
    const double variance = static_cast<double>(truth.variance);
    const double mean_squared = static_cast<double>(truth.mean_squared);
    const double slack = 1e-9 * (variance + mean_squared);
    below += estimate < variance - slack ? 1 : 0;
    outside += (estimate < variance - slack || estimate > variance + 2 * epsilon / (1 + epsilon) * mean_squared + slack)
                   ? 1
                   : 0;
  }
  MESSAGE("sketch estimate outside its bound in " << outside << " of " << trials << " trials (below Var: " << below
                                                  << "); stated δ = " << delta);
  CHECK(static_cast<double>(outside) <= delta * trials);
  CHECK(below <= outside);
}

TEST_CASE("fda monitors its estimate every step, syncs exactly when it exceeds theta, identically on all ranks")
{
  constexpr int world = 3;
  constexpr std::size_t n = 40;
  constexpr int steps = 60;
  const auto q = schedule_harness::quadratic::make(n, world, 0.5, 0.2);
  for (const fda_estimator estimator : {fda_estimator::naive, fda_estimator::linear, fda_estimator::sketch}) {
    CAPTURE(terse::schedule::to_string(estimator));
    std::vector<std::vector<std::uint64_t>> synced(world);
    std::vector<std::vector<std::vector<float>>> trajectory(world);  // params after each step's update
    std::vector<std::vector<std::vector<float>>> after(world);       // params after on_parameters
    std::vector<std::vector<double>> estimates(world);
    terse::run_local(world, [&](terse::local_transport& t) {
      const auto r = static_cast<std::size_t>(t.rank());
      terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport, fda> sync(
          t, terse::layout::single(n), {}, {}, {}, fda({.threshold = 0.02, .estimator = estimator}));
      std::vector<float> x(n, 0.0f), g;
      sync.schedule().start(host_span<const float>(x));
      for (std::uint64_t step = 0; step < steps; ++step) {
        q.gradient(t.rank(), step, x, g);
        for (std::size_t j = 0; j < n; ++j) {
          x[j] -= 0.05f * g[j];
        }
        trajectory[r].push_back(x);
        if (sync.on_parameters(host_span<float>(x)) == terse::sync_action::average) {
          synced[r].push_back(step);
        }
        after[r].push_back(x);
        estimates[r].push_back(sync.schedule().last_estimate());
      }
      CHECK(sync.schedule().syncs() == synced[r].size());
    });
    for (std::size_t r = 1; r < world; ++r) {
      CHECK(synced[r] == synced[0]);
      CHECK(estimates[r] == estimates[0]);
    }
    REQUIRE(synced[0].size() >= 2);
    CHECK(synced[0].size() <= steps / 2);
    // Replay by hand: x_last is the start, then each sync's result.
    std::vector<float> last(n, 0.0f);
    std::size_t next_sync = 0;
    for (std::size_t step = 0; step < steps; ++step) {
      std::vector<std::vector<float>> deltas(world, std::vector<float>(n));
      for (std::size_t r = 0; r < world; ++r) {
        for (std::size_t j = 0; j < n; ++j) {
          deltas[r][j] = trajectory[r][step][j] - last[j];
        }
      }
      const exact_moments truth = exact(deltas);
      const double variance = static_cast<double>(truth.variance);
      const double estimate = estimates[0][step];
      const double slack = 1e-6 * static_cast<double>(truth.mean_squared + truth.variance) + 1e-12;
      if (estimator == fda_estimator::naive) {
        CHECK(estimate == doctest::Approx(variance).scale(slack));
      } else if (estimator == fda_estimator::linear) {
        CHECK(estimate >= variance - slack);
      }
      const bool synced_now = next_sync < synced[0].size() && synced[0][next_sync] == step;
      CHECK(synced_now == (estimate > 0.02));
      if (synced_now) {
        ++next_sync;
        // Delta averaging: x = x_last + mean Δ, the same bits on every rank.
        for (std::size_t r = 0; r < world; ++r) {
          CHECK(after[r][step] == after[0][step]);
        }
        for (std::size_t j = 0; j < n; ++j) {
          double mean = 0;
          for (std::size_t r = 0; r < world; ++r) {
            mean += trajectory[r][step][j] / static_cast<double>(world);
          }
          CHECK(after[0][step][j] == doctest::Approx(mean).epsilon(1e-5));
        }
        last = after[0][step];
      } else {
        for (std::size_t r = 0; r < world; ++r) {
          CHECK(after[r][step] == trajectory[r][step]);  // untouched
        }
      }
    }
  }
}

TEST_CASE("fda's direction follows the last global update")
{
  constexpr int world = 2;
  constexpr std::size_t n = 8;
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport, fda> sync(
        t, terse::layout::single(n), {}, {}, {}, fda({.threshold = 0.0}));
    std::vector<float> x(n, 0.0f);
    sync.schedule().start(host_span<const float>(x));
    const host_span<const float> xi = sync.schedule().direction();
    REQUIRE(xi.size() == n);
    double norm = 0;
    for (const float v : xi) {
      norm += static_cast<double>(v) * v;
    }
    CHECK(norm == doctest::Approx(1.0).epsilon(1e-6));
    // Rank 0 moves +1 along coordinates 0 and 1, rank 1 +3 along 0 and −1 along 1:
    // the mean update is (2, 0, ...), so ξ becomes e_0.
    x[0] = t.rank() == 0 ? 1.0f : 3.0f;
    x[1] = t.rank() == 0 ? 1.0f : -1.0f;
    REQUIRE(sync.on_parameters(host_span<float>(x)) == terse::sync_action::average);
    CHECK(x[0] == 2.0f);
    CHECK(x[1] == 0.0f);
    CHECK(sync.schedule().direction()[0] == 1.0f);
    CHECK(sync.schedule().direction()[1] == 0.0f);
  });
}

TEST_CASE("fda's monitoring is metered: 2 doubles per step for linear, 1 + rows*columns for sketch")
{
  constexpr int world = 3;
  constexpr std::size_t n = 64;
  constexpr std::uint64_t steps = 10;
  using metered_t = terse::metered<terse::local_transport&>;
  for (const fda_estimator estimator : {fda_estimator::linear, fda_estimator::sketch}) {
    const fda_config config{.threshold = infinity, .estimator = estimator, .sketch_rows = 3, .sketch_columns = 7};
    const std::size_t values = estimator == fda_estimator::linear ? 2 : 1 + 3 * 7;
    terse::run_local(world, [&](terse::local_transport& t) {
      metered_t m(t);
      // top-k averages through allgather: every allreduce is monitoring.
      terse::allreduce<terse::compress::topk, terse::feedback::residual, metered_t, fda> sync(
          m, terse::layout::single(n), {}, {.density = 0.25f}, {}, fda(config));
      CHECK(sync.schedule().monitor_values(n) == values);
      std::vector<float> x(n, 0.0f);
      sync.schedule().start(host_span<const float>(x));
      for (std::uint64_t step = 0; step < steps; ++step) {
        x[step % n] += 0.1f * static_cast<float>(t.rank() + 1);
        CHECK(sync.on_parameters(host_span<float>(x)) == terse::sync_action::skip);
      }
      const std::size_t own = terse::detail::block_of(values, world, t.rank()).count;
      const terse::verb_meter& monitored = m.counts(terse::verb::allreduce);
      CHECK(monitored.calls == steps);
      CHECK(monitored.bytes_sent == steps * 2 * (values - own) * sizeof(double));
      CHECK(m.counts().total().bytes_sent == monitored.bytes_sent);  // nothing else moved
    });
  }
}

TEST_CASE("fda syncs far less than periodic averaging at the same final loss when ranks drift slowly")
{
  constexpr int world = 4;
  constexpr std::size_t n = 32;
  constexpr std::uint64_t steps = 400;
  constexpr double lr = 0.1;
  // Slow drift: centres 1% apart, curvature 10% apart (local SGD's bias), little noise.
  const auto q = schedule_harness::quadratic::make(n, world, 0.01, 0.005, 0.1);
  const std::vector<double> best = q.optimum();
  const double floor = q.global_loss(best);
  const auto run = [&](auto make_sync) {
    std::vector<std::vector<float>> models(world);
    std::vector<std::uint64_t> syncs(world);
    terse::run_local(world, [&](terse::local_transport& t) {
      auto sync = make_sync(t);
      std::vector<float> x(n, 0.0f);
      if constexpr (requires { sync.schedule().start(host_span<const float>(x)); }) {
        sync.schedule().start(host_span<const float>(x));
      }
      std::vector<std::uint64_t> synced;
      schedule_harness::train(sync, q, t.rank(), x, 0, steps, lr, synced);
      models[static_cast<std::size_t>(t.rank())] = x;
      syncs[static_cast<std::size_t>(t.rank())] = synced.size();
    });
    return std::pair{q.global_loss(schedule_harness::mean_model(models)) - floor, syncs[0]};
  };
  const auto periodic = run([&](terse::local_transport& t) {
    return terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport,
                            terse::schedule::periodic>(t, terse::layout::single(n), {}, {}, {},
                                                       terse::schedule::periodic(4));
  });
  const auto dynamic = run([&](terse::local_transport& t) {
    return terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport, fda>(
        t, terse::layout::single(n), {}, {}, {}, fda({.threshold = 2e-3}));
  });
  // The loss of the consensus model (the mean of the ranks' models: what the
  // next average gives) above the optimum.
  MESSAGE("periodic H=4: " << periodic.second << " syncs, excess loss " << periodic.first
                           << "; fda linear: " << dynamic.second << " syncs, excess loss " << dynamic.first);
  CHECK(periodic.second == steps / 4);
  CHECK(dynamic.second * 5 <= periodic.second);
  CHECK(dynamic.first <= 1.1 * periodic.first);
  CHECK(periodic.first < 1e-6 * q.global_loss(std::vector<double>(n, 0.0)));
}

TEST_CASE("fda saves and restores bit for bit with compressed deltas")
{
  for (const fda_estimator estimator : {fda_estimator::linear, fda_estimator::sketch, fda_estimator::naive}) {
    CAPTURE(terse::schedule::to_string(estimator));
    const auto make = [&] { return fda({.threshold = 0.05, .estimator = estimator, .sketch_columns = 31}); };
    schedule_harness::check_replay<terse::compress::topk, terse::feedback::residual, fda>(
        make, terse::compress::topk{.density = 0.25f}, 12, true);
    schedule_harness::check_replay<terse::compress::qsgd<15>, terse::feedback::residual, fda>(
        make, terse::compress::qsgd<15>{.bucket = 16}, 12, true);
  }
  // Without start(): the first call establishes x_last (saved too).
  schedule_harness::check_replay<terse::compress::topk, terse::feedback::residual, fda>(
      [] { return fda({.threshold = 0.05}); }, terse::compress::topk{.density = 0.25f}, 10, false);
}

TEST_CASE("fda without start() establishes x_last with one exact dense average")
{
  constexpr int world = 2;
  constexpr std::size_t n = 6;
  using metered_t = terse::metered<terse::local_transport&>;
  terse::run_local(world, [&](terse::local_transport& t) {
    metered_t m(t);
    terse::allreduce<terse::compress::topk, terse::feedback::residual, metered_t, fda> sync(
        m, terse::layout::single(n), {}, {.density = 0.5f}, {}, fda({.threshold = infinity}));
    std::vector<float> x(n, static_cast<float>(t.rank()));  // ranks disagree
    CHECK(sync.on_parameters(host_span<float>(x)) == terse::sync_action::average);
    CHECK(x == std::vector<float>(n, 0.5f));
    CHECK(sync.schedule().syncs() == 1);
    CHECK(m.counts(terse::verb::allreduce).calls == 1);
    CHECK(sync.on_parameters(host_span<float>(x)) == terse::sync_action::skip);
  });
}

TEST_CASE("fda: every rank raises non_finite when one rank's parameters are not finite")
{
  constexpr int world = 3;
  int raised = 0;
  std::mutex lock;
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport, fda> sync(
        t, terse::layout::single(4), {}, {}, {}, fda());
    std::vector<float> x(4, 0.0f);
    sync.schedule().start(host_span<const float>(x));
    if (t.rank() == 1) {
      x[2] = std::numeric_limits<float>::quiet_NaN();
    }
    try {
      sync.on_parameters(host_span<float>(x));
    } catch (const terse::error& e) {
      const std::lock_guard guard(lock);
      raised += e.code() == terse::errc::non_finite ? 1 : 0;
    }
  });
  CHECK(raised == world);
}

TEST_CASE("fda rejects bad configurations")
{
  const auto invalid = [](fda_config c) {
    try {
      fda f(c);
    } catch (const terse::error& e) {
      return e.code() == terse::errc::invalid_argument;
    }
    return false;
  };
  CHECK(invalid({.threshold = -1.0}));
  CHECK(invalid({.threshold = std::numeric_limits<double>::quiet_NaN()}));
  CHECK(invalid({.sketch_rows = 0}));
  CHECK(invalid({.sketch_columns = 0}));
  CHECK(invalid({.sketch_rows = 1u << 13, .sketch_columns = 1u << 13}));
  CHECK(invalid({.estimator = static_cast<fda_estimator>(7)}));
  CHECK_NOTHROW(fda({.threshold = infinity}));
  // A parameter buffer of another size than the start is refused.
  fda f;
  std::vector<float> x(4, 0.0f);
  f.start(host_span<const float>(x));
  CHECK_THROWS_AS(f.rebase(host_span<const float>(std::vector<float>(5, 0.0f))), terse::error);
}

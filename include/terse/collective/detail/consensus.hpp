#pragma once
/// @file
/// How far apart the ranks' models are, and when that counts as divergence.
/// The consensus distance is (1/W) Σ_i ‖x_i − x̄‖².
///
/// - exact: one dense allreduce of the model (n values, the cost of an
///   allreduce step) and one of a scalar.
/// - sketch: one allreduce of 1 + rows·columns doubles (10 KB for 5 × 250)
///   whatever n: (1/W) Σ‖x_i‖² minus ‖x̄‖² estimated from the averaged AMS
///   sketch and divided by 1 + ε. With probability at least 1 − δ
///   (schedule/detail/ams_sketch.hpp) it is never below the true distance,
///   and above it by at most 2ε/(1 + ε)·‖x̄‖², so it is a coarse gauge when
///   the models are close and a sure one when they drift apart.
///
/// Every rank gets the same bits (allreduce results are identical on every
/// rank), so every rank takes the same decision.

#include <terse/core/error.hpp>
#include <terse/core/span.hpp>
#include <terse/core/verbs.hpp>
#include <terse/schedule/detail/fda_estimators.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace terse::detail {

template <class T, class Transport>
double exact_consensus_distance(Transport& transport, host_span<const T> x, std::vector<T>& mean, bool poison = false)
{
  mean.assign(x.begin(), x.end());
  transport.allreduce(host_span<T>(mean.data(), mean.size()), reduce_op::average);
  double squares[1] = {0.0};
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(mean[i]);
    squares[0] += d * d;
  }
  if (poison) {
    squares[0] = std::numeric_limits<double>::quiet_NaN();  // every rank's result turns NaN
  }
  transport.allreduce(host_span<double>(squares, 1), reduce_op::sum);
  return squares[0] / static_cast<double>(transport.size());
}

/// FDA's sketch estimator (schedule/detail/fda_estimators.hpp) applied to
/// the models themselves: (1/W) Σ‖x_i‖² − ‖x̄‖²/(1 + ε).
template <class T, class Transport>
double sketched_consensus_distance(Transport& transport, host_span<const T> x, std::uint64_t seed, std::uint32_t rows,
                                   std::uint32_t columns, std::vector<double>& state, bool poison = false)
{
  const std::size_t summary_size = 1 + static_cast<std::size_t>(rows) * columns;
  state.resize(summary_size + rows);  // the summary, then the estimator's scratch
  const host_span<double> summary(state.data(), summary_size);
  schedule::detail::fda_sketch_state(x, seed, rows, columns, summary);
  if (poison) {
    summary[0] = std::numeric_limits<double>::quiet_NaN();
  }
  transport.allreduce(summary, reduce_op::average);
  return schedule::detail::fda_sketch_estimate(summary, rows, columns,
                                               host_span<double>(state.data() + summary_size, rows));
}

/// Raises errc::diverged when a probe is not finite, or when it grew by
/// more than `growth` `patience` probes in a row.
struct divergence_guard {
  double growth = 1.5;
  std::uint32_t patience = 3;
  double last = -1.0;
  std::uint32_t streak = 0;

  void observe(double value)
  {
    TERSE_CHECK(std::isfinite(value), errc::diverged,
                "the consensus distance is not finite: some rank holds NaN or Inf");
    streak = last >= 0.0 && value > growth * last ? streak + 1 : 0;
    last = value;
    TERSE_CHECK(patience == 0 || streak < patience, errc::diverged,
                "the consensus distance grew by more than " + std::to_string(growth) + "x in " +
                    std::to_string(streak) + " probes in a row (now " + std::to_string(value) +
                    "): lower the consensus step or compress less");
  }
};

}  // namespace terse::detail

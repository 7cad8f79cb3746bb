#pragma once
// Out-of-line bodies of terse::schedule::adaptive_interval (schedule/adaptive_interval.hpp).

#include <algorithm>

namespace terse::schedule {

inline adaptive_interval::adaptive_interval(adaptive_config config) : config_(config), period_(config.initial_period)
{
  TERSE_EXPECTS(config_.initial_period >= 1, "the initial averaging period is at least one step");
  TERSE_EXPECTS(config_.max_period >= config_.initial_period, "max_period is at least initial_period");
  TERSE_EXPECTS(
      config_.which == adaptive_config::rule::adacomm || config_.which == adaptive_config::rule::loss_progress,
      "the rule is adacomm or loss_progress");
  TERSE_EXPECTS(std::isfinite(config_.progress_tolerance) && config_.progress_tolerance >= 0.0,
                "progress_tolerance is a finite fraction, zero or more");
}

template <class Averager>
sync_action adaptive_interval::on_parameters(const step_context&, host_span<float> parameters, Averager& averager)
{
  if (!reference_.ready()) {
    reference_.reserve(parameters.size());
  }
  if (++since_sync_ < period_) {
    return sync_action::skip;
  }
  double monitored[2] = {loss_sum_, loss_count_};
  averager.monitor(host_span<double>(monitored, 2), reduce_op::sum);
  const bool observed = monitored[1] > 0.0;
  const double loss = observed ? monitored[0] / monitored[1] : 0.0;
  // Every rank holds the same monitored bits, so every rank raises.
  TERSE_CHECK(std::isfinite(loss), errc::non_finite, "adaptive_interval: the loss averaged across ranks is NaN or Inf");
  if (reference_.ready()) {
    reference_.average_delta(parameters, averager);
  } else {
    reference_.establish(parameters, averager);
  }
  since_sync_ = 0;
  loss_sum_ = 0.0;
  loss_count_ = 0.0;
  ++syncs_;
  if (observed) {
    adapt_period(loss);
  }
  return sync_action::average;
}

inline void adaptive_interval::adapt_period(double loss)
{
  const double cap = static_cast<double>(config_.max_period);
  if (!has_loss_) {
    initial_loss_ = loss;
    last_loss_ = loss;
    has_loss_ = true;
    return;
  }
  if (config_.which == adaptive_config::rule::adacomm) {
    if (initial_loss_ > 0.0 && loss >= 0.0) {
      const double h = std::ceil(std::sqrt(loss / initial_loss_) * static_cast<double>(config_.initial_period));
      period_ = h >= cap ? config_.max_period : std::max<std::uint64_t>(1, static_cast<std::uint64_t>(h));
    }
  } else {
    const double improvement = last_loss_ != 0.0 ? (last_loss_ - loss) / std::abs(last_loss_) : 0.0;
    if (improvement < config_.progress_tolerance) {
      period_ = std::min(config_.max_period, 2 * period_);
    }
  }
  last_loss_ = loss;
}

inline void adaptive_interval::save(state_writer& out) const
{
  TERSE_CHECK(device_.empty(), errc::unsupported,
              "adaptive_interval: save() covers host buffers, and this schedule ran on device buffers");
  out.section("schedule::adaptive_interval");
  reference_.save(out);
  out.value(period_);
  out.value(since_sync_);
  out.value(loss_sum_);
  out.value(loss_count_);
  out.value(initial_loss_);
  out.value(last_loss_);
  out.value(static_cast<std::uint8_t>(has_loss_ ? 1 : 0));
  out.value(syncs_);
}

inline void adaptive_interval::load(state_reader& in)
{
  in.section("schedule::adaptive_interval");
  reference_.load(in);
  period_ = in.value<std::uint64_t>();
  since_sync_ = in.value<std::uint64_t>();
  loss_sum_ = in.value<double>();
  loss_count_ = in.value<double>();
  initial_loss_ = in.value<double>();
  last_loss_ = in.value<double>();
  has_loss_ = in.value<std::uint8_t>() != 0;
  syncs_ = in.value<std::uint64_t>();
}

}  // namespace terse::schedule

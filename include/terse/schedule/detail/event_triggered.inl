#pragma once
// Out-of-line bodies of terse::schedule::event_triggered (schedule/event_triggered.hpp).

#include <algorithm>

namespace terse::schedule {

inline event_triggered::event_triggered(event_config config) : config_(config)
{
  TERSE_EXPECTS(config_.on == event_config::signal::model_drift || config_.on == event_config::signal::gradient_norm,
                "the event signal is model_drift or gradient_norm");
  TERSE_EXPECTS(std::isfinite(config_.threshold) && config_.threshold > 0.0,
                "the event threshold is a positive multiple of the signal's per-step rate");
  TERSE_EXPECTS(config_.adapt >= 0.0 && config_.adapt <= 1.0, "adapt lies in [0, 1]");
  TERSE_EXPECTS(config_.min_period >= 1, "a sync is at least one step after the last");
  TERSE_EXPECTS(config_.max_period >= config_.min_period, "max_period is at least min_period");
}

inline std::uint64_t event_triggered::first_period() const noexcept
{
  const double steps = std::ceil(config_.threshold);
  const auto period =
      steps >= static_cast<double>(config_.max_period) ? config_.max_period : static_cast<std::uint64_t>(steps);
  return std::clamp(period, config_.min_period, config_.max_period);
}

template <class Averager>
sync_action event_triggered::on_gradients(const step_context&, host_span<float> gradients, Averager&)
{
  if (config_.on == event_config::signal::gradient_norm) {
    path_ += std::sqrt(detail::squared_norm(host_span<const float>(gradients)));
  }
  return sync_action::skip;
}

template <class Averager>
sync_action event_triggered::on_parameters(const step_context&, host_span<float> parameters, Averager& averager)
{
  if (!reference_.ready()) {
    reference_.establish(parameters, averager);
    path_ = 0.0;
    ++syncs_;
    return sync_action::average;
  }
  ++since_sync_;
  // Every rank knows since_sync_, so every rank skips the same checks.
  if (since_sync_ < (calibrated_ ? config_.min_period : first_period())) {
    return sync_action::skip;
  }
  double signal = config_.on == event_config::signal::model_drift
                      ? std::sqrt(detail::squared_distance(host_span<const float>(parameters), reference_.reference()))
                      : path_;
  averager.monitor(host_span<double>(&signal, 1), reduce_op::max);
  TERSE_CHECK(std::isfinite(signal), errc::non_finite,
              "event_triggered: the monitored signal is NaN or Inf (some rank's parameters or gradients are)");
  last_signal_ = signal;
  const bool fire = !calibrated_ || since_sync_ >= config_.max_period || signal > config_.threshold * rate_;
  if (!fire) {
    return sync_action::skip;
  }
  const double rate = signal / static_cast<double>(since_sync_);
  if (!calibrated_) {
    // A signal that did not move calibrates nothing: the next interval tries again.
    calibrated_ = rate > 0.0;
    rate_ = rate;
  } else {
    rate_ = (1.0 - config_.adapt) * rate_ + config_.adapt * rate;
  }
  reference_.average_delta(parameters, averager);
  since_sync_ = 0;
  path_ = 0.0;
  ++syncs_;
  return sync_action::average;
}

inline void event_triggered::save(state_writer& out) const
{
  TERSE_CHECK(device_.empty(), errc::unsupported,
              "event_triggered: save() covers host buffers, and this schedule ran on device buffers");
  out.section("schedule::event_triggered");
  reference_.save(out);
  out.value(since_sync_);
  out.value(path_);
  out.value(rate_);
  out.value(static_cast<std::uint8_t>(calibrated_ ? 1 : 0));
  out.value(last_signal_);
  out.value(syncs_);
}

inline void event_triggered::load(state_reader& in)
{
  in.section("schedule::event_triggered");
  reference_.load(in);
  since_sync_ = in.value<std::uint64_t>();
  path_ = in.value<double>();
  rate_ = in.value<double>();
  calibrated_ = in.value<std::uint8_t>() != 0;
  last_signal_ = in.value<double>();
  syncs_ = in.value<std::uint64_t>();
}

}  // namespace terse::schedule

#pragma once
// Out-of-line bodies of terse::schedule::fda (schedule/fda.hpp).

#include <terse/core/philox.hpp>

#include <string>

namespace terse::schedule {

inline fda::fda(fda_config config) : config_(config)
{
  TERSE_EXPECTS(!std::isnan(config_.threshold) && config_.threshold >= 0.0,
                "the FDA threshold Θ is a variance: zero or more (+infinity never synchronises)");
  TERSE_EXPECTS(config_.estimator == fda_estimator::naive || config_.estimator == fda_estimator::linear ||
                    config_.estimator == fda_estimator::sketch,
                "fda_estimator is naive, linear or sketch");
  TERSE_EXPECTS(config_.sketch_rows >= 1 && config_.sketch_columns >= 1,
                "an AMS sketch has at least one row and one column");
  TERSE_EXPECTS(static_cast<std::uint64_t>(config_.sketch_rows) * config_.sketch_columns <= (1u << 24),
                "the sketch is meant to be small: rows * columns at most 2^24");
}

inline std::size_t fda::monitor_values(std::size_t n) const noexcept
{
  switch (config_.estimator) {
    case fda_estimator::naive: return n + 1;
    case fda_estimator::linear: return 2;
    case fda_estimator::sketch: return 1 + static_cast<std::size_t>(config_.sketch_rows) * config_.sketch_columns;
  }
  return 0;
}

inline void fda::start(host_span<const float> parameters)
{
  reference_.start(parameters);
  prepare(parameters.size());
}

// Sizes the buffers once and draws the first ξ: a unit vector with
// coordinates uniform in [-1, 1) before normalising (any direction the ranks
// agree on serves until the first global update replaces it).
inline void fda::prepare(std::size_t n)
{
  state_.assign(monitor_values(n), 0.0);
  scratch_.assign(config_.sketch_rows, 0.0);
  chunk_row_.assign(config_.estimator == fda_estimator::sketch ? config_.sketch_columns : 0, 0.0);
  if (xi_.size() == n) {
    return;
  }
  xi_.assign(n, 0.0f);
  const random_stream stream{config_.seed, 1, 0xFFFFFFFFu};
  double squares = 0;
  std::vector<double> draw(n);
  for (std::size_t i = 0; i < n; ++i) {
    draw[i] = 2.0 * static_cast<double>(stream.uniform(i)) - 1.0;
    squares += draw[i] * draw[i];
  }
  const double norm = std::sqrt(squares);
  for (std::size_t i = 0; i < n; ++i) {
    xi_[i] = norm > 0 ? static_cast<float>(draw[i] / norm) : (i == 0 ? 1.0f : 0.0f);
  }
}

template <class Averager>
sync_action fda::on_parameters(const step_context&, host_span<float> parameters, Averager& averager)
{
  if (!reference_.ready()) {
    reference_.establish(parameters, averager);
    prepare(parameters.size());
    ++syncs_;
    return sync_action::average;
  }
  const host_span<const float> delta = reference_.delta(host_span<const float>(parameters));
  const host_span<double> state(state_);
  switch (config_.estimator) {
    case fda_estimator::naive: detail::fda_naive_state(delta, state); break;
    case fda_estimator::linear: detail::fda_linear_state(delta, host_span<const float>(xi_), state); break;
    case fda_estimator::sketch:
      detail::fda_sketch_state_chunked(delta, config_.seed, config_.sketch_rows, config_.sketch_columns, state,
                                       host_span<double>(chunk_row_));
      break;
  }
  averager.monitor(state, reduce_op::average);
  double estimate = 0;
  switch (config_.estimator) {
    case fda_estimator::naive: estimate = detail::fda_naive_estimate(state); break;
    case fda_estimator::linear: estimate = detail::fda_linear_estimate(state); break;
    case fda_estimator::sketch:
      estimate =
          detail::fda_sketch_estimate(state, config_.sketch_rows, config_.sketch_columns, host_span<double>(scratch_));
      break;
  }
  // Every rank holds the same monitored bits, so every rank raises.
  TERSE_CHECK(std::isfinite(estimate), errc::non_finite,
              "fda: the model variance estimate is NaN or Inf (some rank's parameters are)");
  last_estimate_ = estimate;
  if (!(estimate > config_.threshold)) {
    return sync_action::skip;
  }
  const host_span<const float> update = reference_.average_delta(parameters, averager);
  const double norm = std::sqrt(detail::squared_norm(update));
  if (norm > 0) {
    for (std::size_t i = 0; i < update.size(); ++i) {
      xi_[i] = static_cast<float>(static_cast<double>(update[i]) / norm);
    }
  }
  ++syncs_;
  return sync_action::average;
}

inline void fda::save(state_writer& out) const
{
  TERSE_CHECK(device_.empty(), errc::unsupported,
              "fda: save() covers host buffers, and this schedule ran on device buffers");
  out.section("schedule::fda");
  out.value(static_cast<std::uint8_t>(config_.estimator));
  reference_.save(out);
  out.array(host_span<const float>(xi_));
  out.value(last_estimate_);
  out.value(syncs_);
}

inline void fda::load(state_reader& in)
{
  in.section("schedule::fda");
  TERSE_CHECK(in.value<std::uint8_t>() == static_cast<std::uint8_t>(config_.estimator), errc::io,
              "fda state was saved with another estimator");
  reference_.load(in);
  xi_.assign(in.peek_array_length(), 0.0f);
  in.array(host_span<float>(xi_));
  last_estimate_ = in.value<double>();
  syncs_ = in.value<std::uint64_t>();
  if (reference_.ready()) {
    TERSE_CHECK(xi_.size() == reference_.size(), errc::io, "fda state: ξ and x_last differ in length");
    prepare(reference_.size());
  }
}

}  // namespace terse::schedule

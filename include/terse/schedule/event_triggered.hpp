#pragma once
/// @file
/// `schedule::event_triggered` (seed 000 §3.3): the ranks train locally and
/// average their parameters when an event says they have moved far enough:
///
/// - `signal::model_drift`: s_i = ‖x_i − x_last‖, the drift of rank i's
///   model since the last sync;
/// - `signal::gradient_norm`: s_i = Σ ‖g_i‖ over the steps since the last
///   sync, the gradient norms seen in on_gradients() (for plain SGD, η·s_i
///   bounds the drift).
///
/// After each optimizer step the ranks take s = max_i s_i with one
/// `monitor` allreduce of a single double, so all decide together, and
/// synchronise when s exceeds the threshold τ = threshold · ρ, where ρ is a
/// per-step rate of the signal that adapts to the stage of training:
///
/// - the first interval lasts ⌈threshold⌉ steps (clamped to the periods)
///   and calibrates ρ = s / steps at its sync;
/// - at every later sync, ρ ← (1 − adapt)·ρ + adapt·(s / steps).
///
/// So `threshold` is about the number of steps between syncs while the
/// signal grows as fast as it did at calibration. With a small `adapt` the
/// threshold remembers the fast early training: as gradients shrink and the
/// models move more slowly, syncs grow sparser (frequent early, sparse
/// late); with adapt = 1 it follows the latest interval (a steady period).
/// A sync happens no earlier than `min_period` steps and no later than
/// `max_period` steps after the last one; steps before `min_period` are not
/// monitored. A sync averages the model delta x − x_last through the
/// collective's codec and feedback.
///
/// Monitoring costs one double per monitored step.

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/stream.hpp>
#include <terse/schedule/detail/device_hooks.hpp>
#include <terse/schedule/detail/reference_model.hpp>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <string_view>

namespace terse::schedule {

struct event_config {
  enum class signal : std::uint8_t {
    model_drift,    ///< ‖x − x_last‖
    gradient_norm,  ///< Σ ‖g‖ since the last sync (needs on_gradients with the gradients)
  };
  signal on = signal::model_drift;
  /// τ = threshold · ρ (ρ: the adapted per-step rate of the signal); about
  /// the steps between syncs at the calibrated rate. Positive.
  double threshold = 8.0;
  /// How far ρ moves toward the latest interval's rate at each sync, in
  /// [0, 1]: 0 keeps the first calibration, 1 follows the latest interval.
  double adapt = 0.25;
  std::uint64_t min_period = 1;
  std::uint64_t max_period = 1000;

  friend std::ostream& operator<<(std::ostream& os, const event_config& c)
  {
    return os << "{on=" << (c.on == signal::model_drift ? "model_drift" : "gradient_norm")
              << ", threshold=" << c.threshold << ", adapt=" << c.adapt << ", min_period=" << c.min_period
              << ", max_period=" << c.max_period << '}';
  }
};

class event_triggered {
 public:
  explicit event_triggered(event_config config = {});

  const event_config& config() const noexcept { return config_; }

  /// The parameters every rank starts from (the same on every rank); without
  /// it the first on_parameters() establishes the reference with one exact
  /// dense average (8 bytes per parameter).
  void start(host_span<const float> parameters) { reference_.start(parameters); }
  /// Every rank now continues from `parameters` (after an outer step).
  void rebase(host_span<const float> parameters) { reference_.rebase(parameters); }

  /// After the backward pass: adds ‖g‖ to this rank's signal (gradient_norm)
  /// and leaves the gradients alone (they are never averaged).
  template <class Averager>
  sync_action on_gradients(const step_context& ctx, host_span<float> gradients, Averager& averager);

  /// After the optimizer step: monitors max_i s_i and averages the
  /// parameters when it crosses the threshold (or max_period is reached).
  template <class Averager>
  sync_action on_parameters(const step_context& ctx, host_span<float> parameters, Averager& averager);
  /// The same on device buffers, its arithmetic as kernels on `stream`
  /// (needs <terse/cuda/schedules.cuh>; bit-identical to the host path).
  template <class Averager>
  sync_action on_parameters(const step_context& ctx, device_span<float> parameters, Averager& averager,
                            stream_ref stream = {})
  {
    return detail::device_schedule<typename detail::deferred<event_triggered, Averager>::type>::on_parameters(
        *this, ctx, parameters, averager, stream);
  }
  template <class Averager>
  sync_action on_gradients(const step_context& ctx, device_span<float> gradients, Averager& averager,
                           stream_ref stream = {})
  {
    return detail::device_schedule<typename detail::deferred<event_triggered, Averager>::type>::on_gradients(
        *this, ctx, gradients, averager, stream);
  }
  /// start() and rebase() of device buffers, on `stream`.
  template <class Self = event_triggered>
  void start(device_span<const float> parameters, stream_ref stream = {})
  {
    detail::device_schedule<Self>::start(*this, parameters, stream);
  }
  template <class Self = event_triggered>
  void rebase(device_span<const float> parameters, stream_ref stream = {})
  {
    detail::device_schedule<Self>::rebase(*this, parameters, stream);
  }

  /// The threshold τ the next check compares with (before calibration: 0).
  double threshold_now() const noexcept { return calibrated_ ? config_.threshold * rate_ : 0.0; }
  /// The last monitored signal max_i s_i (the same on every rank).
  double last_signal() const noexcept { return last_signal_; }
  std::uint64_t syncs() const noexcept { return syncs_; }

  void save(state_writer& out) const;
  void load(state_reader& in);

  friend std::ostream& operator<<(std::ostream& os, const event_triggered& e)
  {
    return os << "event_triggered" << e.config_;
  }

 private:
  friend struct detail::device_schedule<event_triggered>;
  std::uint64_t first_period() const noexcept;

  event_config config_;
  detail::reference_model reference_;
  std::uint64_t since_sync_ = 0;
  double path_ = 0.0;  // Σ ‖g‖ since the last sync, this rank
  double rate_ = 0.0;  // ρ
  bool calibrated_ = false;
  double last_signal_ = 0.0;
  std::uint64_t syncs_ = 0;
  detail::device_twin device_;  // x_last and Σ ‖g‖ on the device
};

}  // namespace terse::schedule

#include <terse/schedule/detail/event_triggered.inl>

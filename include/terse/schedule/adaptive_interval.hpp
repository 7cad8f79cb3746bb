#pragma once
/// @file
/// `schedule::adaptive_interval`: local SGD whose averaging period H changes
/// with training progress. The trainer reports its local loss each step
/// (`observe_loss`, before on_parameters); at every sync the ranks average
/// the mean loss of the interval with one `monitor` allreduce of two
/// doubles (Σ loss, count), so every rank computes the same F and the same
/// next H. Two rules:
///
/// - `rule::adacomm` (Wang & Joshi 2019, AdaComm): H = ⌈√(F/F₀)·H₀⌉, F₀
///   the first interval's loss. H shrinks as the loss falls (communicate
///   more as the error floor of local SGD starts to matter).
/// - `rule::loss_progress` (seed 000 §3.3: frequent early, sparser as the
///   loss reduction falls): when the relative improvement between syncs,
///   (F_prev − F)/|F_prev|, is below `progress_tolerance`, H doubles.
///
/// Both clamp H to [1, max_period]. Without observed losses H stays. A sync
/// averages the model delta x − x_last through the collective's codec and
/// feedback; without start() the first sync averages the model exactly
/// (dense doubles through monitor, once) to set x_last.
///
/// Monitoring costs two doubles per sync, nothing between syncs.

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

namespace terse::schedule {

struct adaptive_config {
  /// H₀: the first interval's length (AdaComm's base period).
  std::uint64_t initial_period = 4;
  std::uint64_t max_period = 64;
  enum class rule : std::uint8_t { adacomm, loss_progress } which = rule::adacomm;
  /// loss_progress: double H when the loss fell by less than this fraction
  /// since the last sync.
  double progress_tolerance = 0.05;

  friend std::ostream& operator<<(std::ostream& os, const adaptive_config& c)
  {
    return os << "{initial_period=" << c.initial_period << ", max_period=" << c.max_period
              << ", rule=" << (c.which == rule::adacomm ? "adacomm" : "loss_progress")
              << ", progress_tolerance=" << c.progress_tolerance << '}';
  }
};

class adaptive_interval {
 public:
  explicit adaptive_interval(adaptive_config config = {});

  const adaptive_config& config() const noexcept { return config_; }

  /// This rank's training loss for the current step (call once per step,
  /// before on_parameters). Any value is accepted; a non-finite average
  /// across ranks raises errc::non_finite on every rank at the next sync.
  void observe_loss(double local_loss) noexcept
  {
    loss_sum_ += local_loss;
    loss_count_ += 1.0;
  }

  /// The parameters every rank starts from (the same on every rank).
  void start(host_span<const float> parameters) { reference_.start(parameters); }
  /// Every rank now continues from `parameters` (after an outer step).
  void rebase(host_span<const float> parameters)
  {
    if (reference_.ready()) {
      reference_.rebase(parameters);
    }
  }

  sync_action on_gradients(const step_context&) const noexcept { return sync_action::skip; }

  /// After the optimizer step: averages the parameters when H steps have
  /// passed since the last sync, then sets the next H.
  template <class Averager>
  sync_action on_parameters(const step_context& ctx, host_span<float> parameters, Averager& averager);
  /// The same on device buffers, its arithmetic as kernels on `stream`
  /// (needs <terse/cuda/schedules.cuh>; bit-identical to the host path).
  template <class Averager>
  sync_action on_parameters(const step_context& ctx, device_span<float> parameters, Averager& averager,
                            stream_ref stream = {})
  {
    return detail::device_schedule<typename detail::deferred<adaptive_interval, Averager>::type>::on_parameters(
        *this, ctx, parameters, averager, stream);
  }
  /// start() and rebase() of device buffers, on `stream`.
  template <class Self = adaptive_interval>
  void start(device_span<const float> parameters, stream_ref stream = {})
  {
    detail::device_schedule<Self>::start(*this, parameters, stream);
  }
  template <class Self = adaptive_interval>
  void rebase(device_span<const float> parameters, stream_ref stream = {})
  {
    detail::device_schedule<Self>::rebase(*this, parameters, stream);
  }

  /// The current period H.
  std::uint64_t period() const noexcept { return period_; }
  /// The loss averaged across ranks at the last sync (0 before).
  double last_loss() const noexcept { return last_loss_; }
  std::uint64_t syncs() const noexcept { return syncs_; }

  void save(state_writer& out) const;
  void load(state_reader& in);

  friend std::ostream& operator<<(std::ostream& os, const adaptive_interval& a)
  {
    return os << "adaptive_interval" << a.config_;
  }

 private:
  friend struct detail::device_schedule<adaptive_interval>;
  void adapt_period(double loss);

  adaptive_config config_;
  detail::reference_model reference_;
  std::uint64_t period_;
  std::uint64_t since_sync_ = 0;
  double loss_sum_ = 0.0;
  double loss_count_ = 0.0;
  double initial_loss_ = 0.0;  // F₀
  double last_loss_ = 0.0;     // F at the last sync
  bool has_loss_ = false;      // F₀ and last_loss_ are set
  std::uint64_t syncs_ = 0;
  detail::device_twin device_;  // x_last on the device
};

}  // namespace terse::schedule

#include <terse/schedule/detail/adaptive_interval.inl>

#pragma once
/// @file
/// `schedule::fda`: Federated Dynamic Averaging (Theologitis et al., seed
/// 004). Every rank trains locally; after each optimizer step the ranks
/// average a tiny state that estimates the variance of their models,
///
///     Var = (1/W) Σ_i ‖Δ_i‖² − ‖(1/W) Σ_i Δ_i‖²,   Δ_i = x_i − x_last,
///
/// and synchronise only when the estimate exceeds Θ. A sync averages the
/// model delta through the collective's codec and feedback (so top-k with
/// residual feedback compresses the drift, not the model):
/// x ← x_last + average(Δ); x_last ← x; ξ ← the direction of that update.
///
/// @code
/// using sync_t = terse::allreduce<terse::compress::topk, terse::feedback::residual,
///                                 terse::local_transport, terse::schedule::fda>;
/// sync_t sync(transport, shape, {}, {.density = 0.01f}, {}, terse::schedule::fda({.threshold = 0.5}));
/// sync.schedule().start(params);  // the model every rank starts from
/// // each step: backward, sync.on_gradients(grads), optimizer step, then
/// sync.on_parameters(params);     // monitors 2 doubles; syncs when Var > Θ
/// @endcode
///
/// Monitoring per step (one `monitor` allreduce of doubles, averaged):
/// naive n + 1 values (exact; for tests only: it costs twice a dense
/// model average every step), linear 2, sketch 1 + rows·columns.

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/stream.hpp>
#include <terse/schedule/detail/device_hooks.hpp>
#include <terse/schedule/detail/fda_estimators.hpp>
#include <terse/schedule/detail/reference_model.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string_view>
#include <vector>

namespace terse::schedule {

/// How FDA estimates the model variance from per-rank state.
enum class fda_estimator : std::uint8_t {
  naive,   ///< exact: averages Δ itself (n + 1 doubles per step; tests only)
  linear,  ///< ‖Δ‖² and ξ·Δ (2 doubles): never below the true variance
  sketch,  ///< ‖Δ‖² and an AMS sketch of Δ (1 + rows·columns doubles)
};

constexpr std::string_view to_string(fda_estimator e) noexcept
{
  switch (e) {
    case fda_estimator::naive: return "naive";
    case fda_estimator::linear: return "linear";
    case fda_estimator::sketch: return "sketch";
  }
  return "unknown";
}

struct fda_config {
  /// Θ: synchronise when the estimated variance exceeds it (units of ‖x‖²;
  /// +infinity never synchronises). Tune it to the model: the variance of
  /// W models is about k·η²·σ² per parameter after k local steps.
  double threshold = 0.5;
  fda_estimator estimator = fda_estimator::linear;
  /// Sketch shape (sketch estimator only): error ε = √(8/columns) with
  /// failure probability δ from detail::ams_sketch_failure_bound.
  std::uint32_t sketch_rows = 5;
  std::uint32_t sketch_columns = 250;
  /// Shared by all ranks: keys the first ξ (a random unit vector) and the
  /// sketch's hash and sign functions.
  std::uint64_t seed = 0xFDA5EED;

  friend std::ostream& operator<<(std::ostream& os, const fda_config& c)
  {
    return os << "{threshold=" << c.threshold << ", estimator=" << to_string(c.estimator)
              << ", sketch=" << c.sketch_rows << 'x' << c.sketch_columns << ", seed=" << c.seed << '}';
  }
};

class fda {
 public:
  explicit fda(fda_config config = {});

  const fda_config& config() const noexcept { return config_; }

  /// The parameters every rank starts from (the same on every rank). Call
  /// it before training; without it the first on_parameters() establishes
  /// the reference with one exact dense average (8 bytes per parameter).
  void start(host_span<const float> parameters);
  /// Every rank now continues from `parameters` (an outer optimizer such as
  /// slowmo moved them after a sync): the new x_last.
  void rebase(host_span<const float> parameters) { reference_.rebase(parameters); }

  sync_action on_gradients(const step_context&) const noexcept { return sync_action::skip; }

  /// After the optimizer step: monitors the variance estimate and, when it
  /// exceeds Θ, averages the model delta. Returns sync_action::average when
  /// the parameters were averaged. Every rank takes the same decision (it
  /// rests on the monitored average alone).
  template <class Averager>
  sync_action on_parameters(const step_context& ctx, host_span<float> parameters, Averager& averager);
  /// The same on device buffers, its arithmetic as kernels on `stream`
  /// (needs <terse/cuda/schedules.cuh>; bit-identical to the host path).
  template <class Averager>
  sync_action on_parameters(const step_context& ctx, device_span<float> parameters, Averager& averager,
                            stream_ref stream = {})
  {
    return detail::device_schedule<typename detail::deferred<fda, Averager>::type>::on_parameters(
        *this, ctx, parameters, averager, stream);
  }
  /// start() and rebase() of device buffers, on `stream`.
  template <class Self = fda>
  void start(device_span<const float> parameters, stream_ref stream = {})
  {
    detail::device_schedule<Self>::start(*this, parameters, stream);
  }
  template <class Self = fda>
  void rebase(device_span<const float> parameters, stream_ref stream = {})
  {
    detail::device_schedule<Self>::rebase(*this, parameters, stream);
  }

  /// The variance estimate of the last step (the same on every rank).
  double last_estimate() const noexcept { return last_estimate_; }
  /// Model averages so far (including an establishing one).
  std::uint64_t syncs() const noexcept { return syncs_; }
  /// Doubles monitored per step for `n` parameters.
  std::size_t monitor_values(std::size_t n) const noexcept;
  /// The current direction ξ (a unit vector; empty before the first call).
  host_span<const float> direction() const noexcept { return host_span<const float>(xi_); }

  void save(state_writer& out) const;
  void load(state_reader& in);

  friend std::ostream& operator<<(std::ostream& os, const fda& f) { return os << "fda" << f.config_; }

 private:
  friend struct detail::device_schedule<fda>;
  void prepare(std::size_t n);

  fda_config config_;
  detail::reference_model reference_;
  std::vector<float> xi_;
  std::vector<double> state_;      // the monitored state, sized once
  std::vector<double> scratch_;    // sketch rows
  std::vector<double> chunk_row_;  // one sketch row's chunk sums (sketch_columns zeros between steps)
  double last_estimate_ = 0.0;
  detail::device_twin device_;  // x_last, ξ and scratch on the device
  std::uint64_t syncs_ = 0;
};

}  // namespace terse::schedule

#include <terse/schedule/detail/fda.inl>

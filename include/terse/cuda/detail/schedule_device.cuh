#pragma once
/// @file
/// The device halves of the schedules that keep a reference model x_last:
/// fda (three estimators), event_triggered and adaptive_interval.

#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/stream.hpp>
#include <terse/core/verbs.hpp>
#include <terse/cuda/detail/schedule_reference.cuh>
#include <terse/schedule/adaptive_interval.hpp>
#include <terse/schedule/event_triggered.hpp>
#include <terse/schedule/fda.hpp>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace terse::schedule::detail {

// --- fda -----------------------------------------------------------------------

struct fda_extra {
  device_buffer<float> xi;
  device_buffer<double> sketch;  // chunk sums of the sketch estimator
  void copy_extra(fda_extra& to, std::size_t n) const
  {
    to.xi.reserve(n);
    copy_on_device(to.xi.data(), xi.data(), n, cudaStream_t{});
    TERSE_CUDA_TRY(cudaStreamSynchronize(cudaStream_t{}));
  }
};

template <>
struct device_schedule<fda> {
  using twin = reference_twin<fda_extra>;

  // Host prepare() draws ξ and sizes the host state; the device gets ξ and
  // its buffers once.
  static twin& prepare(fda& f, std::size_t n, cudaStream_t stream)
  {
    twin& t = twin_of<twin>(f.device_);
    f.prepare(n);
    t.monitored_count = f.monitor_values(n);
    t.reference.reserve(n, t.monitored_count);
    t.xi.reserve(n);
    if (n != 0) {
      TERSE_CUDA_TRY(cudaMemcpyAsync(t.xi.data(), f.xi_.data(), n * sizeof(float), cudaMemcpyHostToDevice, stream));
      TERSE_CUDA_TRY(cudaStreamSynchronize(stream));  // the host ξ may change under a later load()
    }
    if (f.config_.estimator == fda_estimator::sketch) {
      const std::size_t chunks = (n + sketch_chunk - 1) / sketch_chunk;
      t.sketch.reserve(std::max<std::size_t>(1, chunks * f.config_.sketch_rows * f.config_.sketch_columns));
    }
    return t;
  }

  static void start(fda& f, device_span<const float> parameters, stream_ref s)
  {
    const cudaStream_t stream = stream_of(s);
    twin_of<twin>(f.device_).reference.start(parameters, stream);
    prepare(f, parameters.size(), stream);
  }

  static void rebase(fda& f, device_span<const float> parameters, stream_ref s)
  {
    twin_of<twin>(f.device_).reference.rebase(parameters, stream_of(s));
  }

  template <class Averager>
  static sync_action on_parameters(fda& f, const step_context&, device_span<float> parameters, Averager& averager,
                                   stream_ref s)
  {
    const cudaStream_t stream = stream_of(s);
    twin& t = twin_of<twin>(f.device_);
    const restore_on_throw restore(f.last_estimate_);
    if (!t.reference.ready()) {
      t.reference.establish(parameters, averager, stream);
      prepare(f, parameters.size(), stream);
      ++f.syncs_;
      return sync_action::average;
    }
    const std::size_t n = parameters.size();
    const device_span<const float> delta = t.reference.delta(device_span<const float>(parameters), stream);
    const std::size_t count = f.monitor_values(n);
    double* state = t.reference.monitored(count);
    double* squares = t.reference.sum(square_term<float>{delta.data()}, 0, stream);
    copy_on_device(state, squares, 1, stream);
    switch (f.config_.estimator) {
      case fda_estimator::naive: device::launch(device::naive_state_kernel<>, n, stream, delta.data(), state, n); break;
      case fda_estimator::linear:
        copy_on_device(state + 1, t.reference.sum(product_term{t.xi.data(), delta.data()}, 1, stream), 1, stream);
        break;
      case fda_estimator::sketch: sketch_state(f, t, delta, state + 1, stream); break;
    }
    const host_span<double> monitored =
        monitor_device_values(averager, t.reference, state, count, reduce_op::average, stream);
    double estimate = 0;
    const host_span<const double> averaged(monitored);
    switch (f.config_.estimator) {
      case fda_estimator::naive: estimate = fda_naive_estimate(averaged); break;
      case fda_estimator::linear: estimate = fda_linear_estimate(averaged); break;
      case fda_estimator::sketch:
        estimate = fda_sketch_estimate(averaged, f.config_.sketch_rows, f.config_.sketch_columns,
                                       host_span<double>(f.scratch_));
        break;
    }
    TERSE_CHECK(std::isfinite(estimate), errc::non_finite,
                "fda: the model variance estimate is NaN or Inf (some rank's parameters are)");
    f.last_estimate_ = estimate;
    if (!(estimate > f.config_.threshold)) {
      return sync_action::skip;
    }
    const device_span<const float> update = t.reference.average_delta(parameters, averager, stream);
    const double* norm2 = t.reference.sum(square_term<float>{update.data()}, 2, stream);
    device::launch(device::direction_kernel<>, n, stream, update.data(), norm2, t.xi.data(), n);
    ++f.syncs_;
    return sync_action::average;
  }

 private:
  static void sketch_state(const fda& f, twin& t, device_span<const float> delta, double* sketch, cudaStream_t stream)
  {
    const std::uint32_t rows = f.config_.sketch_rows;
    const std::uint32_t columns = f.config_.sketch_columns;
    const std::size_t n = delta.size();
    const std::size_t chunks = (n + sketch_chunk - 1) / sketch_chunk;
    const std::size_t partials = chunks * rows * columns;
    t.sketch.reserve(std::max<std::size_t>(1, partials));
    if (partials != 0) {
      TERSE_CUDA_TRY(cudaMemsetAsync(t.sketch.data(), 0, partials * sizeof(double), stream));
    }
    device::launch(device::sketch_chunks_kernel<>, chunks * rows, stream, delta.data(), n, f.config_.seed, rows,
                   columns, chunks, t.sketch.data());
    device::launch(device::sketch_total_kernel<>, std::size_t{rows} * columns, stream,
                   static_cast<const double*>(t.sketch.data()), rows, columns, chunks, sketch);
  }
};

// --- event_triggered -----------------------------------------------------------

struct event_extra {
  device_buffer<double> path;  // Σ ‖g‖ since the last sync, this rank (device)
  device_buffer<double> squares;
  device_buffer<double> gradient_partials;
  void copy_extra(event_extra& to, std::size_t) const
  {
    to.path.reserve(1);
    to.squares.reserve(1);
    copy_on_device(to.path.data(), path.data(), 1, cudaStream_t{});
    TERSE_CUDA_TRY(cudaStreamSynchronize(cudaStream_t{}));
  }
};

template <>
struct device_schedule<event_triggered> {
  using twin = reference_twin<event_extra>;

  static twin& state(event_triggered& e, cudaStream_t stream)
  {
    twin& t = twin_of<twin>(e.device_);
    if (t.path.capacity() == 0) {
      t.path.reserve(1);
      t.squares.reserve(1);
      TERSE_CUDA_TRY(cudaMemsetAsync(t.path.data(), 0, sizeof(double), stream));
    }
    return t;
  }

  static void start(event_triggered& e, device_span<const float> parameters, stream_ref s)
  {
    state(e, stream_of(s)).reference.start(parameters, stream_of(s));
  }
  static void rebase(event_triggered& e, device_span<const float> parameters, stream_ref s)
  {
    state(e, stream_of(s)).reference.rebase(parameters, stream_of(s));
  }

  /// ‖g‖ added to this rank's path on the device: no wait.
  template <class Averager>
  static sync_action on_gradients(event_triggered& e, const step_context&, device_span<float> gradients, Averager&,
                                  stream_ref s)
  {
    if (e.config_.on == event_config::signal::gradient_norm) {
      const cudaStream_t stream = stream_of(s);
      twin& t = state(e, stream);
      t.gradient_partials.reserve(reduction_blocks(gradients.size()) + 1);
      device::blocked_sum(square_term<float>{gradients.data()}, gradients.size(), t.gradient_partials.data(),
                          t.squares.data(), stream);
      device::add_sqrt_kernel<><<<1, 1, 0, stream>>>(t.squares.data(), t.path.data());
      TERSE_CUDA_TRY(cudaGetLastError());
    }
    return sync_action::skip;
  }

  template <class Averager>
  static sync_action on_parameters(event_triggered& e, const step_context&, device_span<float> parameters,
                                   Averager& averager, stream_ref s)
  {
    const cudaStream_t stream = stream_of(s);
    twin& t = state(e, stream);
    const restore_on_throw restore(e.since_sync_, e.last_signal_);
    if (!t.reference.ready()) {
      t.reference.establish(parameters, averager, stream);
      TERSE_CUDA_TRY(cudaMemsetAsync(t.path.data(), 0, sizeof(double), stream));
      ++e.syncs_;
      return sync_action::average;
    }
    ++e.since_sync_;
    if (e.since_sync_ < (e.calibrated_ ? e.config_.min_period : e.first_period())) {
      return sync_action::skip;
    }
    // s_i on the device (√ correctly rounded, as std::sqrt), then max_i s_i.
    double* signal_slot = t.reference.monitored(1);
    if (e.config_.on == event_config::signal::model_drift) {
      const double* d2 =
          t.reference.sum(squared_difference_term{parameters.data(), t.reference.reference()}, 0, stream);
      TERSE_CUDA_TRY(cudaMemsetAsync(signal_slot, 0, sizeof(double), stream));
      device::add_sqrt_kernel<><<<1, 1, 0, stream>>>(d2, signal_slot);
      TERSE_CUDA_TRY(cudaGetLastError());
    } else {
      copy_on_device(signal_slot, static_cast<const double*>(t.path.data()), 1, stream);
    }
    const double signal = monitor_device_values(averager, t.reference, signal_slot, 1, reduce_op::max, stream)[0];
    TERSE_CHECK(std::isfinite(signal), errc::non_finite,
                "event_triggered: the monitored signal is NaN or Inf (some rank's parameters or gradients are)");
    e.last_signal_ = signal;
    const bool fire = !e.calibrated_ || e.since_sync_ >= e.config_.max_period || signal > e.config_.threshold * e.rate_;
    if (!fire) {
      return sync_action::skip;
    }
    const double rate = signal / static_cast<double>(e.since_sync_);
    t.reference.average_delta(parameters, averager, stream);
    if (!e.calibrated_) {
      e.calibrated_ = rate > 0.0;
      e.rate_ = rate;
    } else {
      e.rate_ = (1.0 - e.config_.adapt) * e.rate_ + e.config_.adapt * rate;
    }
    e.since_sync_ = 0;
    TERSE_CUDA_TRY(cudaMemsetAsync(t.path.data(), 0, sizeof(double), stream));
    ++e.syncs_;
    return sync_action::average;
  }
};

// --- adaptive_interval ---------------------------------------------------------

struct no_extra {
  void copy_extra(no_extra&, std::size_t) const {}
};

template <>
struct device_schedule<adaptive_interval> {
  using twin = reference_twin<no_extra>;

  static void start(adaptive_interval& a, device_span<const float> parameters, stream_ref s)
  {
    twin_of<twin>(a.device_).reference.start(parameters, stream_of(s));
  }
  static void rebase(adaptive_interval& a, device_span<const float> parameters, stream_ref s)
  {
    twin& t = twin_of<twin>(a.device_);
    if (t.reference.ready()) {
      t.reference.rebase(parameters, stream_of(s));
    }
  }

  /// Monitors two host doubles (the losses): the device is never waited for.
  template <class Averager>
  static sync_action on_parameters(adaptive_interval& a, const step_context&, device_span<float> parameters,
                                   Averager& averager, stream_ref s)
  {
    const cudaStream_t stream = stream_of(s);
    twin& t = twin_of<twin>(a.device_);
    const restore_on_throw restore(a.since_sync_);
    if (++a.since_sync_ < a.period_) {
      return sync_action::skip;
    }
    double monitored[2] = {a.loss_sum_, a.loss_count_};
    t.reference.reserve(parameters.size(), 2);
    monitor_host_values(averager, t.reference, t.reference.monitored(2), host_span<double>(monitored, 2),
                        reduce_op::sum, stream);
    const bool observed = monitored[1] > 0.0;
    const double loss = observed ? monitored[0] / monitored[1] : 0.0;
    TERSE_CHECK(std::isfinite(loss), errc::non_finite,
                "adaptive_interval: the loss averaged across ranks is NaN or Inf");
    if (t.reference.ready()) {
      t.reference.average_delta(parameters, averager, stream);
    } else {
      t.reference.establish(parameters, averager, stream);
    }
    a.since_sync_ = 0;
    a.loss_sum_ = 0.0;
    a.loss_count_ = 0.0;
    ++a.syncs_;
    if (observed) {
      a.adapt_period(loss);
    }
    return sync_action::average;
  }
};

}  // namespace terse::schedule::detail

#pragma once
/// @file
/// What the device halves of the schedules share: x_last and its scratch on
/// the device (device_reference, the steps of reference_model as kernels),
/// the monitored values' way across ranks and back to the host, and the
/// type-erased twin that holds them in the schedule object.

#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/stream.hpp>
#include <terse/core/verbs.hpp>
#include <terse/cuda/detail/schedule_kernels.cuh>
#include <terse/schedule/detail/device_hooks.hpp>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <tuple>

namespace terse::schedule::detail {

inline cudaStream_t stream_of(stream_ref stream) noexcept
{
  return stream.empty() ? cudaStream_t{} : stream.as<cudaStream_t>();
}

/// Puts a schedule's host fields back when the step throws (a failed
/// exchange): the host path gets this from the collective's snapshot of
/// the schedule, which would copy the device vectors on every step.
template <class... T>
class restore_on_throw {
 public:
  explicit restore_on_throw(T&... fields) : fields_(fields...), saved_(fields...) {}
  restore_on_throw(const restore_on_throw&) = delete;
  restore_on_throw& operator=(const restore_on_throw&) = delete;
  ~restore_on_throw()
  {
    if (std::uncaught_exceptions() > exceptions_) {
      fields_ = saved_;
    }
  }

 private:
  std::tuple<T&...> fields_;
  std::tuple<T...> saved_;
  int exceptions_ = std::uncaught_exceptions();
};

/// Copies `count` Ts device to device on `stream`.
template <class T>
void copy_on_device(T* to, const T* from, std::size_t count, cudaStream_t stream)
{
  if (count != 0) {
    TERSE_CUDA_TRY(cudaMemcpyAsync(to, from, count * sizeof(T), cudaMemcpyDeviceToDevice, stream));
  }
}

/// average_exactly() for device parameters: the model widened to doubles
/// on the device, averaged through the averager's monitor (on the device
/// for a device transport, else through pinned memory), rounded back to
/// floats. Done once per run, so it may allocate and wait.
template <class Averager>
void average_exactly_on_device(device_span<float> parameters, Averager& averager, cudaStream_t stream)
{
  const std::size_t n = parameters.size();
  device_buffer<double> wide;
  wide.reserve(n);
  device::launch(device::widen_kernel<>, n, stream, static_cast<const float*>(parameters.data()), wide.data(), n);
  if constexpr (requires {
                  averager.monitor(device_span<double>(wide.data(), n), reduce_op::average, stream_ref(stream));
                }) {
    averager.monitor(device_span<double>(wide.data(), n), reduce_op::average, stream_ref(stream));
  } else {
    pinned_buffer<double> exact;
    exact.reserve(n);
    if (n != 0) {
      TERSE_CUDA_TRY(cudaMemcpyAsync(exact.data(), wide.data(), n * sizeof(double), cudaMemcpyDeviceToHost, stream));
    }
    TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
    averager.monitor(host_span<double>(exact.data(), n), reduce_op::average);
    if (n != 0) {
      TERSE_CUDA_TRY(cudaMemcpyAsync(wide.data(), exact.data(), n * sizeof(double), cudaMemcpyHostToDevice, stream));
    }
  }
  device::launch(device::narrow_kernel<>, n, stream, static_cast<const double*>(wide.data()), parameters.data(), n);
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));  // the staging is freed on return
}

/// x_last and the scratch of reference_model, on the device: the same
/// steps, as kernels.
class device_reference {
 public:
  bool ready() const noexcept { return ready_; }
  std::size_t size() const noexcept { return n_; }
  const float* reference() const noexcept { return reference_.data(); }

  /// Sizes every buffer for n parameters and `monitored` monitored doubles.
  void reserve(std::size_t n, std::size_t monitored)
  {
    reference_.reserve(n);
    delta_.reserve(n);
    sums_.reserve(reduction_blocks(n) + 4);
    monitored_.reserve(monitored);
    host_.reserve(monitored);
  }

  void start(device_span<const float> parameters, cudaStream_t stream)
  {
    n_ = parameters.size();
    reserve(n_, 1);
    copy_on_device(reference_.data(), parameters.data(), n_, stream);
    ready_ = true;
  }

  void rebase(device_span<const float> parameters, cudaStream_t stream)
  {
    check_size(parameters.size());
    copy_on_device(reference_.data(), parameters.data(), n_, stream);
  }

  /// One exact dense average of the model through the averager's monitor
  /// (doubles through pinned memory, as the host's average_exactly), then
  /// start() from it. Done once, so it may allocate and wait.
  template <class Averager>
  void establish(device_span<float> parameters, Averager& averager, cudaStream_t stream)
  {
    average_exactly_on_device(parameters, averager, stream);
    start(device_span<const float>(parameters), stream);
  }

  /// Δ = x − x_last on the device; returns it (valid until the next call).
  device_span<const float> delta(device_span<const float> parameters, cudaStream_t stream)
  {
    check_size(parameters.size());
    device::launch(device::subtract_kernel<>, n_, stream, parameters.data(), reference_.data(), delta_.data(), n_);
    return device_span<const float>(delta_.data(), n_);
  }

  /// Averages Δ through the averager's codec and feedback, then
  /// x_last += Δ̄ and x = x_last. Nothing changes when the average throws.
  template <class Averager>
  device_span<const float> average_delta(device_span<float> parameters, Averager& averager, cudaStream_t stream)
  {
    delta(device_span<const float>(parameters), stream);
    averager.average(device_span<float>(delta_.data(), n_), stream_ref(stream));
    device::launch(device::apply_delta_kernel<>, n_, stream, reference_.data(), delta_.data(), parameters.data(), n_);
    return device_span<const float>(delta_.data(), n_);
  }

  /// Σ term(i) over the n parameters into device slot `slot` (0..3).
  template <class Term>
  double* sum(const Term& term, int slot, cudaStream_t stream)
  {
    double* out = sums_.data() + reduction_blocks(n_) + slot;
    device::blocked_sum(term, n_, sums_.data(), out, stream);
    return out;
  }

  /// Device memory for `count` monitored doubles.
  double* monitored(std::size_t count)
  {
    monitored_.reserve(count);
    return monitored_.data();
  }

  /// Copies `count` device doubles to pinned memory and waits: the step's
  /// one host synchronisation. The values stay valid until the next call.
  host_span<double> read(const double* values, std::size_t count, cudaStream_t stream)
  {
    host_.reserve(count);
    TERSE_CUDA_TRY(cudaMemcpyAsync(host_.data(), values, count * sizeof(double), cudaMemcpyDeviceToHost, stream));
    TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
    return host_span<double>(host_.data(), count);
  }

  /// Pinned memory for `count` doubles (the buffer read() returns).
  host_span<double> staging(std::size_t count)
  {
    host_.reserve(count);
    return host_span<double>(host_.data(), count);
  }

  void copy_from(const device_reference& other, std::size_t monitored_count)
  {
    n_ = other.n_;
    ready_ = other.ready_;
    reserve(n_, monitored_count);
    copy_on_device(reference_.data(), other.reference_.data(), n_, cudaStream_t{});
    TERSE_CUDA_TRY(cudaStreamSynchronize(cudaStream_t{}));
  }

  void check_size(std::size_t n) const
  {
    TERSE_EXPECTS(n == n_, "the parameters have " + std::to_string(n) +
                               " elements but the schedule's reference model " + std::to_string(n_));
  }

 private:
  std::size_t n_ = 0;
  bool ready_ = false;
  device_buffer<float> reference_;
  device_buffer<float> delta_;
  device_buffer<double> sums_;       // block partials, then 4 result slots
  device_buffer<double> monitored_;  // the monitored state before it is read
  pinned_buffer<double> host_;
};

/// Averages `count` monitored doubles held in device memory across ranks
/// and returns them in pinned host memory (the step's one wait): through
/// the averager's device monitor when it has one (a device transport),
/// else through its host monitor after the copy.
template <class Averager>
host_span<double> monitor_device_values(Averager& averager, device_reference& reference, double* values,
                                        std::size_t count, reduce_op op, cudaStream_t stream)
{
  if constexpr (requires { averager.monitor(device_span<double>(values, count), op, stream_ref(stream)); }) {
    averager.monitor(device_span<double>(values, count), op, stream_ref(stream));
    return reference.read(values, count, stream);
  } else {
    const host_span<double> host = reference.read(values, count, stream);
    averager.monitor(host, op);
    return host;
  }
}

/// Monitors doubles the host holds (adaptive_interval's losses): directly
/// through a host monitor, or staged through device slot `values` for a
/// device transport.
template <class Averager>
void monitor_host_values(Averager& averager, device_reference& reference, double* values, host_span<double> host,
                         reduce_op op, cudaStream_t stream)
{
  if constexpr (requires { averager.monitor(device_span<double>(values, host.size()), op, stream_ref(stream)); }) {
    const host_span<double> staged = reference.staging(host.size());
    std::copy(host.begin(), host.end(), staged.begin());
    TERSE_CUDA_TRY(
        cudaMemcpyAsync(values, staged.data(), host.size() * sizeof(double), cudaMemcpyHostToDevice, stream));
    averager.monitor(device_span<double>(values, host.size()), op, stream_ref(stream));
    const host_span<double> averaged = reference.read(values, host.size(), stream);
    std::copy(averaged.begin(), averaged.end(), host.begin());
  } else {
    averager.monitor(host, op);
  }
}

/// A twin holding a device_reference (and whatever else `Extra` adds).
template <class Extra>
struct reference_twin final : device_twin_base, Extra {
  device_reference reference;
  std::size_t monitored_count = 1;
  std::unique_ptr<device_twin_base> clone() const override
  {
    auto copy = std::make_unique<reference_twin>();
    copy->monitored_count = monitored_count;
    copy->reference.copy_from(reference, monitored_count);
    Extra::copy_extra(*copy, reference.size());
    return copy;
  }
};

template <class Twin>
Twin& twin_of(device_twin& holder)
{
  if (holder.empty()) {
    holder.reset(std::make_unique<Twin>());
  }
  return holder.get<Twin>();
}

}  // namespace terse::schedule::detail

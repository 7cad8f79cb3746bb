#pragma once
/// @file
/// The device halves of the outer optimizers slowmo and bmuf: the outer
/// loop of schedule/detail/outer_loop.hpp (start point, the block average
/// over a base that only decides, rebasing a base that drives the
/// exchange) and the outer steps, as kernels.

#include <terse/core/concepts.hpp>
#include <terse/cuda/detail/schedule_device.cuh>
#include <terse/schedule/bmuf.hpp>
#include <terse/schedule/slowmo.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <string>

namespace terse::schedule::detail {

/// outer_loop's vectors on the device, plus the outer step's (momentum for
/// slowmo; x₀ and Δ for bmuf: `first` and `second`).
struct outer_twin final : device_twin_base {
  std::size_t n = 0;
  bool started = false;
  device_buffer<float> start;
  device_buffer<float> delta;
  device_buffer<float> first;
  device_buffer<float> second;

  void reserve(std::size_t count)
  {
    start.reserve(count);
    delta.reserve(count);
    first.reserve(count);
    second.reserve(count);
  }

  std::unique_ptr<device_twin_base> clone() const override
  {
    auto copy = std::make_unique<outer_twin>();
    copy->n = n;
    copy->started = started;
    copy->reserve(n);
    copy_on_device(copy->start.data(), start.data(), n, cudaStream_t{});
    copy_on_device(copy->first.data(), first.data(), n, cudaStream_t{});
    copy_on_device(copy->second.data(), second.data(), n, cudaStream_t{});
    TERSE_CUDA_TRY(cudaStreamSynchronize(cudaStream_t{}));
    return copy;
  }

  void check_size(std::size_t count) const
  {
    TERSE_EXPECTS(count == n, "the parameters have " + std::to_string(count) +
                                  " elements but the outer optimizer's iterate " + std::to_string(n));
  }
};

/// What outer_loop<Base> does, for device parameters.
template <class Base>
struct device_outer_loop {
  static void set_start(outer_twin& t, device_span<const float> parameters, cudaStream_t stream)
  {
    t.n = parameters.size();
    t.reserve(t.n);
    copy_on_device(t.start.data(), parameters.data(), t.n, stream);
    t.started = true;
  }

  static void start(Base& base, outer_twin& t, device_span<const float> parameters, cudaStream_t stream)
  {
    set_start(t, parameters, stream);
    if constexpr (requires { base.start(parameters, stream_ref(stream)); }) {
      base.start(parameters, stream_ref(stream));
    }
  }

  template <class Averager>
  static bool block_averaged(Base& base, outer_twin& t, bool average_delta, const step_context& ctx,
                             device_span<float> parameters, Averager& averager, cudaStream_t stream)
  {
    if (!t.started) {
      t.reserve(parameters.size());  // size the buffers before the first average
    }
    if constexpr (concepts::schedule_drives_parameters<Base, Averager>) {
      return base.on_parameters(ctx, parameters, averager, stream_ref(stream)) == sync_action::average;
    } else {
      if (base.on_parameters(ctx) != sync_action::average) {
        return false;
      }
      if (!average_delta) {
        averager.average(parameters, stream_ref(stream));
      } else if (!t.started) {
        average_exactly_on_device(parameters, averager, stream);
      } else {
        t.check_size(parameters.size());
        device::launch(device::subtract_kernel<>, t.n, stream, static_cast<const float*>(parameters.data()),
                       static_cast<const float*>(t.start.data()), t.delta.data(), t.n);
        averager.average(device_span<float>(t.delta.data(), t.n), stream_ref(stream));
        device::launch(device::add_to_kernel<>, t.n, stream, static_cast<const float*>(t.start.data()),
                       static_cast<const float*>(t.delta.data()), parameters.data(), t.n);
      }
      return true;
    }
  }

  static void continue_from(Base& base, outer_twin& t, device_span<const float> parameters, cudaStream_t stream)
  {
    if (!t.started) {
      set_start(t, parameters, stream);
    } else {
      t.check_size(parameters.size());
      copy_on_device(t.start.data(), parameters.data(), t.n, stream);
    }
    if constexpr (requires { base.rebase(parameters, stream_ref(stream)); }) {
      base.rebase(parameters, stream_ref(stream));
    }
  }
};

template <class T>
void zero_on_device(T* data, std::size_t count, cudaStream_t stream)
{
  if (count != 0) {
    TERSE_CUDA_TRY(cudaMemsetAsync(data, 0, count * sizeof(T), stream));
  }
}

template <class Base>
struct device_schedule<slowmo<Base>> {
  using loop = device_outer_loop<Base>;

  static void start(slowmo<Base>& s, device_span<const float> parameters, stream_ref handle)
  {
    const cudaStream_t stream = stream_of(handle);
    outer_twin& t = twin_of<outer_twin>(s.device_);
    loop::start(s.base(), t, parameters, stream);
    zero_on_device(t.first.data(), t.n, stream);  // u = 0
  }

  template <class Averager>
  static sync_action on_parameters(slowmo<Base>& s, const step_context& ctx, device_span<float> parameters,
                                   Averager& averager, stream_ref handle)
  {
    const cudaStream_t stream = stream_of(handle);
    outer_twin& t = twin_of<outer_twin>(s.device_);
    if (!loop::block_averaged(s.base(), t, s.config_.average_delta, ctx, parameters, averager, stream)) {
      return sync_action::skip;
    }
    if (t.started) {
      t.check_size(parameters.size());
      device::launch(device::slowmo_kernel<>, t.n, stream, parameters.data(), t.first.data(),
                     static_cast<const float*>(t.start.data()), s.config_.alpha, s.config_.beta, s.config_.lr, t.n);
    } else {
      t.reserve(parameters.size());
      zero_on_device(t.first.data(), parameters.size(), stream);
    }
    loop::continue_from(s.base(), t, device_span<const float>(parameters), stream);
    ++s.outer_steps_;
    return sync_action::average;
  }
};

template <class Base>
struct device_schedule<bmuf<Base>> {
  using loop = device_outer_loop<Base>;

  static void start(bmuf<Base>& b, device_span<const float> parameters, stream_ref handle)
  {
    const cudaStream_t stream = stream_of(handle);
    outer_twin& t = twin_of<outer_twin>(b.device_);
    loop::start(b.base(), t, parameters, stream);
    copy_on_device(t.first.data(), parameters.data(), t.n, stream);  // x₀
    zero_on_device(t.second.data(), t.n, stream);                    // Δ = 0
  }

  template <class Averager>
  static sync_action on_parameters(bmuf<Base>& b, const step_context& ctx, device_span<float> parameters,
                                   Averager& averager, stream_ref handle)
  {
    const cudaStream_t stream = stream_of(handle);
    outer_twin& t = twin_of<outer_twin>(b.device_);
    if (!loop::block_averaged(b.base(), t, b.config_.average_delta, ctx, parameters, averager, stream)) {
      return sync_action::skip;
    }
    if (t.started) {
      t.check_size(parameters.size());
      device::launch(device::bmuf_kernel<>, t.n, stream, parameters.data(), t.first.data(), t.second.data(),
                     static_cast<const float*>(t.start.data()), b.config_.block_momentum, b.config_.block_lr,
                     b.config_.nesterov, t.n);
    } else {
      t.reserve(parameters.size());
      copy_on_device(t.first.data(), static_cast<const float*>(parameters.data()), parameters.size(), stream);
      zero_on_device(t.second.data(), parameters.size(), stream);
    }
    loop::continue_from(b.base(), t, device_span<const float>(parameters), stream);
    ++b.outer_steps_;
    return sync_action::average;
  }
};

}  // namespace terse::schedule::detail

#pragma once
/// @file
/// How a schedule runs on device buffers without its header needing CUDA:
/// the device overloads of on_parameters / on_gradients forward to
/// `device_schedule<S>`, declared here and defined by
/// <terse/cuda/schedules.cuh> (include it in a translation unit compiled by
/// nvcc), and the device vectors the schedule keeps (x_last, ξ, momenta)
/// live in a type-erased `device_twin` the schedule owns.

#include <terse/core/error.hpp>

#include <memory>
#include <utility>

namespace terse::schedule::detail {

/// The device half of schedule S (cuda/schedules.cuh).
template <class S>
struct device_schedule;

/// S, named so that a template's body refers to device_schedule<S> only
/// when instantiated (a host translation unit never defines it).
template <class S, class...>
struct deferred {
  using type = S;
};

template <class S>
concept has_device_schedule = requires
{
  sizeof(device_schedule<S>);
};

/// The device state of one schedule object, made on its first device step.
struct device_twin_base {
  device_twin_base() = default;
  device_twin_base(const device_twin_base&) = delete;
  device_twin_base& operator=(const device_twin_base&) = delete;
  virtual ~device_twin_base() = default;
  /// A deep copy (device buffers copied on the device).
  virtual std::unique_ptr<device_twin_base> clone() const = 0;
};

/// Owns a device_twin_base; copying a schedule copies its device state.
class device_twin {
 public:
  device_twin() = default;
  device_twin(const device_twin& other) : state_(other.state_ ? other.state_->clone() : nullptr) {}
  device_twin& operator=(const device_twin& other)
  {
    if (this != &other) {
      state_ = other.state_ ? other.state_->clone() : nullptr;
    }
    return *this;
  }
  device_twin(device_twin&&) noexcept = default;
  device_twin& operator=(device_twin&&) noexcept = default;
  ~device_twin() = default;

  bool empty() const noexcept { return state_ == nullptr; }
  template <class T>
  T& get() const noexcept
  {
    return *static_cast<T*>(state_.get());
  }
  void reset(std::unique_ptr<device_twin_base> state) noexcept { state_ = std::move(state); }

 private:
  std::unique_ptr<device_twin_base> state_;
};

}  // namespace terse::schedule::detail

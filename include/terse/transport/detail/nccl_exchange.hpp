#pragma once
/// @file
/// The grouped exchanges of the NCCL transport in flight: one CUDA event
/// each, recorded on the stream after the exchange's group, with the
/// exchange's deadline. Slots and their events are recycled, so exchanges
/// allocate nothing once as many have been in flight at once before.

#include <terse/core/cuda_error.hpp>
#include <terse/core/exchange.hpp>

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

namespace terse::detail::nccl {

class exchange_events {
 public:
  struct slot {
    std::uint64_t id = 0;  ///< 0: free
    cudaEvent_t event = nullptr;
    std::chrono::steady_clock::time_point deadline{};
  };

  exchange_events() = default;
  exchange_events(const exchange_events&) = delete;
  exchange_events& operator=(const exchange_events&) = delete;
  exchange_events(exchange_events&& other) noexcept
      : slots_(std::move(other.slots_)), last_id_(std::exchange(other.last_id_, 0))
  {
    other.slots_.clear();
  }
  exchange_events& operator=(exchange_events&& other) noexcept
  {
    if (this != &other) {
      destroy();
      slots_ = std::move(other.slots_);
      other.slots_.clear();
      last_id_ = std::exchange(other.last_id_, 0);
    }
    return *this;
  }
  ~exchange_events() { destroy(); }

  /// A free slot with its event (created on first use, timing disabled).
  slot& take()
  {
    for (slot& s : slots_) {
      if (s.id == 0) {
        return s;
      }
    }
    slot fresh;
    TERSE_CUDA_TRY(cudaEventCreateWithFlags(&fresh.event, cudaEventDisableTiming));
    try {
      return slots_.emplace_back(fresh);
    } catch (...) {
      TERSE_CUDA_TRY_NOTHROW(cudaEventDestroy(fresh.event));
      throw;
    }
  }

  /// The slot of `id`, or null when it is unknown or spent.
  slot* find(exchange_id id) noexcept
  {
    for (slot& s : slots_) {
      if (s.id != 0 && s.id == id.value) {
        return &s;
      }
    }
    return nullptr;
  }

  std::uint64_t next_id() noexcept { return ++last_id_; }

 private:
  void destroy() noexcept
  {
    for (slot& s : slots_) {
      if (s.event != nullptr) {
        TERSE_CUDA_TRY_NOTHROW(cudaEventDestroy(s.event));
      }
    }
    slots_.clear();
  }

  std::vector<slot> slots_;
  std::uint64_t last_id_ = 0;
};

}  // namespace terse::detail::nccl

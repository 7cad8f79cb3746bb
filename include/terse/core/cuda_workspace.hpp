#pragma once
/// @file
/// `terse::device_workspace`: the scratch a device codec needs, owned by the
/// caller and reused call after call (hot paths never cudaMalloc). It holds
/// numbered device scratch slots and one pinned host slot, each grown
/// geometrically, and a device status word that kernels use to report a
/// malformed payload without trapping.

#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/error.hpp>

#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace terse {

class device_workspace {
 public:
  /// Independent device scratch regions a codec may hold at once.
  static constexpr int slots = 4;

  /// Device scratch slot `slot` with room for `count` Ts (contents are not
  /// kept when it grows).
  template <class T>
  T* scratch(int slot, std::size_t count)
  {
    TERSE_EXPECTS(slot >= 0 && slot < slots, "device_workspace has slots 0.." + std::to_string(slots - 1));
    auto& buffer = device_[static_cast<std::size_t>(slot)];
    buffer.reserve(count * sizeof(T));
    return reinterpret_cast<T*>(buffer.data());
  }

  /// Pinned host scratch with room for `count` Ts.
  template <class T>
  T* pinned(std::size_t count)
  {
    pinned_.reserve(count * sizeof(T));
    return reinterpret_cast<T*>(pinned_.data());
  }

  /// A device word kernels OR a nonzero code into when a payload is bad.
  /// Cleared on the stream by clear_status().
  std::uint32_t* status()
  {
    if (status_.capacity() == 0) {
      status_.reserve(1);
      // Once: zero it and wait, so kernels on any stream (non-blocking ones
      // are not ordered after the legacy default stream) see the zero.
      TERSE_CUDA_TRY(cudaMemset(status_.data(), 0, sizeof(std::uint32_t)));
      TERSE_CUDA_TRY(cudaStreamSynchronize(nullptr));
    }
    return status_.data();
  }

  void clear_status(cudaStream_t stream)
  {
    TERSE_CUDA_TRY(cudaMemsetAsync(status(), 0, sizeof(std::uint32_t), stream));
  }

  /// Waits for `stream` and throws errc::malformed_payload (naming `what`)
  /// when a kernel flagged the status word; clears it either way.
  void check_status(cudaStream_t stream, const char* what)
  {
    auto* status_copy = pinned_status();
    TERSE_CUDA_TRY(cudaMemcpyAsync(status_copy, status(), sizeof(std::uint32_t), cudaMemcpyDeviceToHost, stream));
    TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
    const std::uint32_t code = *status_copy;
    if (code != 0) {
      clear_status(stream);
      TERSE_FAIL(errc::malformed_payload,
                 std::string(what) + ": a device decoder rejected the payload (code " + std::to_string(code) + ")");
    }
  }

 private:
  std::uint32_t* pinned_status()
  {
    status_host_.reserve(1);
    return status_host_.data();
  }

  std::array<device_buffer<std::byte>, slots> device_;
  pinned_buffer<std::byte> pinned_;
  device_buffer<std::uint32_t> status_;
  pinned_buffer<std::uint32_t> status_host_;
};

}  // namespace terse

#pragma once
/// @file
/// `terse::stream_ref`: a device stream passed through host-only headers.
/// It holds the handle as an opaque pointer, so code that never includes
/// CUDA can still carry a `cudaStream_t` from the trainer to the CUDA path
/// (which turns it back with `as<cudaStream_t>()`). Empty means the
/// transport's own stream, or the default stream.

#include <type_traits>

namespace terse {

class stream_ref {
 public:
  constexpr stream_ref() noexcept = default;

  /// From a stream handle (cudaStream_t is a pointer type).
  template <class Handle>
  requires std::is_pointer_v<Handle>
  constexpr stream_ref(Handle handle) noexcept  // NOLINT(google-explicit-constructor)
      : handle_(static_cast<void*>(handle))
  {
  }

  constexpr bool empty() const noexcept { return handle_ == nullptr; }

  template <class Handle>
  requires std::is_pointer_v<Handle> Handle as()
  const noexcept { return static_cast<Handle>(handle_); }

 private:
  void* handle_ = nullptr;
};

}  // namespace terse

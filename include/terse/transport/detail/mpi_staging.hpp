#pragma once
/// @file
/// Device buffers cross MPI through pinned host memory: copy in, run the
/// host algorithm on the staged copy, copy out. Compiled only where the
/// CUDA runtime is available (the terse::cuda target defines
/// TERSE_WITH_CUDA); elsewhere a device span is a compile-time error.

#include <terse/core/memory_space.hpp>

#include <cstddef>

#if defined(TERSE_WITH_CUDA) && TERSE_WITH_CUDA
#include <terse/core/cuda_memory.hpp>

#include <cuda_runtime_api.h>

#include <new>
#include <utility>
#define TERSE_MPI_DEVICE_STAGING 1
#else
#define TERSE_MPI_DEVICE_STAGING 0
#endif

namespace terse::detail::mpi {

/// True when `Space` can be used with the MPI transport in this build.
template <memory_space Space>
inline constexpr bool space_supported = Space == memory_space::host || TERSE_MPI_DEVICE_STAGING;

#if TERSE_MPI_DEVICE_STAGING

/// Two pinned host buffers (one per direction, so sendrecv can stage both
/// sides), grown geometrically and reused: staging allocates only while
/// growing to the working size.
class staging_buffers {
 public:
  template <class T>
  T* outgoing(std::size_t count)
  {
    outgoing_.reserve(count * sizeof(T));
    return reinterpret_cast<T*>(outgoing_.data());
  }
  template <class T>
  T* incoming(std::size_t count)
  {
    incoming_.reserve(count * sizeof(T));
    return reinterpret_cast<T*>(incoming_.data());
  }

  /// Gives the memory up without freeing it, for when MPI may still touch
  /// it after the transport is gone.
  void leak() noexcept
  {
    (void)new (std::nothrow) pinned_buffer<std::byte>(std::move(outgoing_));
    (void)new (std::nothrow) pinned_buffer<std::byte>(std::move(incoming_));
  }

 private:
  pinned_buffer<std::byte> outgoing_;
  pinned_buffer<std::byte> incoming_;
};

/// Blocking copies: the caller's device work that produced `device` must be
/// complete (or on the legacy default stream) before a verb is called.
inline void copy_to_host(void* host, const void* device, std::size_t bytes)
{
  if (bytes != 0) {
    TERSE_CUDA_TRY(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost));
  }
}

inline void copy_to_device(void* device, const void* host, std::size_t bytes)
{
  if (bytes != 0) {
    TERSE_CUDA_TRY(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice));
  }
}

#else

/// Without CUDA there is nothing to stage; the transport never touches it.
class staging_buffers {
 public:
  void leak() noexcept {}
};

#endif

}  // namespace terse::detail::mpi

#pragma once
/// @file
/// Owning CUDA resources: device and pinned host buffers that grow
/// geometrically (so hot paths reuse them instead of calling cudaMalloc),
/// and a stream. Host code compiled by g++ can use these with the CUDA
/// runtime headers (the terse::cuda target).

#include <terse/core/cuda_error.hpp>
#include <terse/core/error.hpp>
#include <terse/core/span.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>

namespace terse {

/// How many CUDA devices this process sees; 0 when there is no driver or
/// no device (never throws, so tests can skip cleanly).
inline int cuda_device_count() noexcept
{
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

/// Where terse takes device memory from. By default cudaMalloc and
/// cudaFree; a trainer that runs a caching allocator installs its own (for
/// PyTorch: c10::cuda::CUDACachingAllocator::raw_alloc and raw_delete), so
/// terse's scratch comes from the same pool as the model's tensors.
struct device_memory_resource {
  void* (*allocate)(std::size_t bytes, void* context) = nullptr;                  ///< nullptr: cudaMalloc
  void (*deallocate)(void* pointer, std::size_t bytes, void* context) = nullptr;  ///< must not throw
  void* context = nullptr;
};

namespace detail {
inline device_memory_resource& installed_device_memory_resource() noexcept
{
  static device_memory_resource resource;
  return resource;
}
}  // namespace detail

/// Installs `resource` for the device memory terse allocates from now on and
/// returns the previous one. Memory is always freed through the resource
/// that allocated it. Call it from one thread, before the collectives touch
/// device memory (not while another thread is inside terse).
inline device_memory_resource set_device_memory_resource(device_memory_resource resource) noexcept
{
  return std::exchange(detail::installed_device_memory_resource(), resource);
}

/// The resource terse allocates device memory from now.
inline device_memory_resource current_device_memory_resource() noexcept
{
  return detail::installed_device_memory_resource();
}

namespace detail {

/// Shared body of device and pinned buffers: capacity grows by doubling and
/// never shrinks; contents are not preserved across growth.
template <class T, class Allocator>
class growing_cuda_buffer {
 public:
  growing_cuda_buffer() = default;
  explicit growing_cuda_buffer(std::size_t count) { reserve(count); }
  growing_cuda_buffer(const growing_cuda_buffer&) = delete;
  growing_cuda_buffer& operator=(const growing_cuda_buffer&) = delete;
  growing_cuda_buffer(growing_cuda_buffer&& other) noexcept
      : allocator_(other.allocator_),
        data_(std::exchange(other.data_, nullptr)),
        capacity_(std::exchange(other.capacity_, 0))
  {
  }
  growing_cuda_buffer& operator=(growing_cuda_buffer&& other) noexcept
  {
    if (this != &other) {
      release();
      allocator_ = other.allocator_;
      data_ = std::exchange(other.data_, nullptr);
      capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
  }
  ~growing_cuda_buffer() { release(); }

  /// Makes room for at least `count` elements; a no-op when it already fits.
  void reserve(std::size_t count)
  {
    if (count <= capacity_) {
      return;
    }
    std::size_t grown = capacity_ == 0 ? count : capacity_;
    while (grown < count) {
      grown *= 2;
    }
    release();
    data_ = static_cast<T*>(allocator_.allocate(grown * sizeof(T)));
    capacity_ = grown;
  }

  T* data() const noexcept { return data_; }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  void release() noexcept
  {
    if (data_ != nullptr) {
      allocator_.deallocate(data_, capacity_ * sizeof(T));
      data_ = nullptr;
      capacity_ = 0;
    }
  }

  [[no_unique_address]] Allocator allocator_{};
  T* data_ = nullptr;
  std::size_t capacity_ = 0;
};

/// Allocates from the resource installed when it allocates, and frees
/// through that same resource.
struct device_allocator {
  device_memory_resource resource{};

  void* allocate(std::size_t bytes)
  {
    resource = current_device_memory_resource();
    if (resource.allocate == nullptr) {
      void* p = nullptr;
      TERSE_CUDA_TRY(cudaMalloc(&p, bytes));
      return p;
    }
    TERSE_EXPECTS(resource.deallocate != nullptr, "a device_memory_resource with allocate needs deallocate too");
    void* p = resource.allocate(bytes, resource.context);
    TERSE_CHECK(p != nullptr, errc::cuda,
                "the installed device_memory_resource returned no memory for " + std::to_string(bytes) + " bytes");
    return p;
  }
  void deallocate(void* p, std::size_t bytes) noexcept
  {
    if (resource.allocate == nullptr) {
      TERSE_CUDA_TRY_NOTHROW(cudaFree(p));
    } else {
      resource.deallocate(p, bytes, resource.context);
    }
  }
};

struct pinned_allocator {
  void* allocate(std::size_t bytes)
  {
    void* p = nullptr;
    TERSE_CUDA_TRY(cudaMallocHost(&p, bytes));
    return p;
  }
  void deallocate(void* p, std::size_t) noexcept { TERSE_CUDA_TRY_NOTHROW(cudaFreeHost(p)); }
};

}  // namespace detail

/// Device memory for `T`s, grown geometrically by reserve().
template <class T>
class device_buffer : public detail::growing_cuda_buffer<T, detail::device_allocator> {
 public:
  using detail::growing_cuda_buffer<T, detail::device_allocator>::growing_cuda_buffer;
  device_span<T> span(std::size_t count) const noexcept { return device_span<T>(this->data(), count); }
};

/// Page-locked host memory for `T`s (fast, asynchronous copies to and from
/// the device), grown geometrically by reserve().
template <class T>
class pinned_buffer : public detail::growing_cuda_buffer<T, detail::pinned_allocator> {
 public:
  using detail::growing_cuda_buffer<T, detail::pinned_allocator>::growing_cuda_buffer;
  host_span<T> span(std::size_t count) const noexcept { return host_span<T>(this->data(), count); }
};

/// An owned, non-blocking CUDA stream.
class cuda_stream {
 public:
  cuda_stream() { TERSE_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  cuda_stream(const cuda_stream&) = delete;
  cuda_stream& operator=(const cuda_stream&) = delete;
  ~cuda_stream() { TERSE_CUDA_TRY_NOTHROW(cudaStreamDestroy(stream_)); }

  cudaStream_t get() const noexcept { return stream_; }
  void synchronize() const { TERSE_CUDA_TRY(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace terse

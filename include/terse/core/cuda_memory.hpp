#pragma once
/// @file
/// Owning CUDA resources: device and pinned host buffers that grow
/// geometrically (so hot paths reuse them instead of calling cudaMalloc),
/// and a stream. Host code compiled by g++ can use these with the CUDA
/// runtime headers (the terse::cuda target).

#include <terse/core/cuda_error.hpp>
#include <terse/core/span.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
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
      : data_(std::exchange(other.data_, nullptr)), capacity_(std::exchange(other.capacity_, 0))
  {
  }
  growing_cuda_buffer& operator=(growing_cuda_buffer&& other) noexcept
  {
    if (this != &other) {
      release();
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
    data_ = static_cast<T*>(Allocator::allocate(grown * sizeof(T)));
    capacity_ = grown;
  }

  T* data() const noexcept { return data_; }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  void release() noexcept
  {
    if (data_ != nullptr) {
      Allocator::deallocate(data_);
      data_ = nullptr;
      capacity_ = 0;
    }
  }

  T* data_ = nullptr;
  std::size_t capacity_ = 0;
};

struct device_allocator {
  static void* allocate(std::size_t bytes)
  {
    void* p = nullptr;
    TERSE_CUDA_TRY(cudaMalloc(&p, bytes));
    return p;
  }
  static void deallocate(void* p) noexcept { TERSE_CUDA_TRY_NOTHROW(cudaFree(p)); }
};

struct pinned_allocator {
  static void* allocate(std::size_t bytes)
  {
    void* p = nullptr;
    TERSE_CUDA_TRY(cudaMallocHost(&p, bytes));
    return p;
  }
  static void deallocate(void* p) noexcept { TERSE_CUDA_TRY_NOTHROW(cudaFreeHost(p)); }
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

#pragma once
// A test helper: a device copy of a host vector, and the way back.

#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/span.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

namespace terse_test {

template <class T>
class device_vector {
 public:
  explicit device_vector(std::size_t size) : size_(size) { buffer_.reserve(size == 0 ? 1 : size); }
  explicit device_vector(const std::vector<T>& values) : device_vector(values.size()) { upload(values); }

  void upload(const std::vector<T>& values)
  {
    TERSE_CUDA_TRY(cudaMemcpy(buffer_.data(), values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const
  {
    std::vector<T> values(size_);
    TERSE_CUDA_TRY(cudaMemcpy(values.data(), buffer_.data(), size_ * sizeof(T), cudaMemcpyDeviceToHost));
    return values;
  }

  terse::device_span<T> span() const noexcept { return buffer_.span(size_); }
  std::size_t size() const noexcept { return size_; }

 private:
  terse::device_buffer<T> buffer_;
  std::size_t size_;
};

}  // namespace terse_test

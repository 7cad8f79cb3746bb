#pragma once
/// @file
/// Host scratch memory for the MPI transport: grown geometrically, reused
/// by every call, so hot paths allocate only while a buffer is still
/// growing to its working size.

#include <cstddef>
#include <memory>
#include <utility>

namespace terse::detail::mpi {

class scratch_buffer {
 public:
  scratch_buffer() = default;
  scratch_buffer(const scratch_buffer&) = delete;
  scratch_buffer& operator=(const scratch_buffer&) = delete;
  /// The memory moves with the buffer (its address does not change, so a
  /// request MPI still holds into it stays valid); `other` is left empty.
  scratch_buffer(scratch_buffer&& other) noexcept
      : data_(std::move(other.data_)), capacity_(std::exchange(other.capacity_, 0))
  {
  }
  scratch_buffer& operator=(scratch_buffer&& other) noexcept
  {
    data_ = std::move(other.data_);
    capacity_ = std::exchange(other.capacity_, 0);
    return *this;
  }
  ~scratch_buffer() = default;

  /// At least `bytes` bytes, aligned for any element type; contents are
  /// not preserved when it grows.
  std::byte* reserve(std::size_t bytes)
  {
    if (bytes > capacity_) {
      std::size_t grown = capacity_ == 0 ? bytes : capacity_;
      while (grown < bytes) {
        grown *= 2;
      }
      data_ = std::make_unique_for_overwrite<std::byte[]>(grown);
      capacity_ = grown;
    }
    return data_.get();
  }

  template <class T>
  T* reserve_for(std::size_t count)
  {
    return reinterpret_cast<T*>(reserve(count * sizeof(T)));
  }

  std::size_t capacity() const noexcept { return capacity_; }

  /// Gives the memory up without freeing it: MPI may still write into it
  /// after the transport is gone (a receive that could not be cancelled).
  void leak() noexcept
  {
    (void)data_.release();
    capacity_ = 0;
  }

 private:
  std::unique_ptr<std::byte[]> data_;
  std::size_t capacity_ = 0;
};

}  // namespace terse::detail::mpi

#pragma once
/// @file
/// `terse::span<T, Space>`: a pointer and a 64-bit count that knows which
/// memory space it points into. Usable in host and device code.

#include <terse/core/config.hpp>
#include <terse/core/memory_space.hpp>

#include <cstddef>
#include <iterator>
#include <ranges>
#include <span>
#include <type_traits>

namespace terse {

template <class T, memory_space Space = memory_space::host>
class span;

namespace detail {
template <class S>
struct is_terse_span : std::false_type {
};
template <class T, memory_space Space>
struct is_terse_span<span<T, Space>> : std::true_type {
};
}  // namespace detail

/// True for terse::span of any element type and space.
template <class S>
concept any_span = detail::is_terse_span<std::remove_cvref_t<S>>::value;

/// A contiguous range in one memory space. Counts and offsets are 64-bit so
/// buffers of more than 2^31 elements work everywhere.
/// @tparam T element type (const-qualified for read-only views)
/// @tparam Space where the elements live; device spans are never
///         dereferenced on the host.
template <class T, memory_space Space>
class span {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using size_type = std::size_t;
  using pointer = T*;
  using iterator = T*;
  static constexpr memory_space space = Space;

  constexpr span() noexcept = default;
  TERSE_HOST_DEVICE constexpr span(T* data, size_type size) noexcept : data_(data), size_(size) {}

  /// Host spans are made from any contiguous range (std::vector, std::array,
  /// std::span). Device memory has no such containers on the host side.
  template <class Range>
  requires(Space == memory_space::host && std::ranges::contiguous_range<Range> && std::ranges::sized_range<Range> &&
           std::is_convertible_v<std::remove_reference_t<std::ranges::range_reference_t<Range>> (*)[],
                                 T (*)[]> &&
           !any_span<Range>) constexpr span(Range&& range) noexcept  // NOLINT(google-explicit-constructor)
      : data_(std::ranges::data(range)), size_(std::ranges::size(range))
  {
  }

  /// span<T> converts to span<const T> in the same space, never across spaces.
  template <class U>
  requires(!std::is_same_v<U, T> && std::is_convertible_v<U (*)[], T (*)[]>) TERSE_HOST_DEVICE
      constexpr span(span<U, Space> other) noexcept  // NOLINT
      : data_(other.data()), size_(other.size())
  {
  }

  TERSE_HOST_DEVICE constexpr T* data() const noexcept { return data_; }
  TERSE_HOST_DEVICE constexpr size_type size() const noexcept { return size_; }
  TERSE_HOST_DEVICE constexpr size_type size_bytes() const noexcept { return size_ * sizeof(T); }
  TERSE_HOST_DEVICE constexpr bool empty() const noexcept { return size_ == 0; }
  TERSE_HOST_DEVICE constexpr T& operator[](size_type i) const noexcept { return data_[i]; }
  TERSE_HOST_DEVICE constexpr T* begin() const noexcept { return data_; }
  TERSE_HOST_DEVICE constexpr T* end() const noexcept { return data_ + size_; }

  /// Elements [offset, offset + count). The caller keeps it in range.
  TERSE_HOST_DEVICE constexpr span subspan(size_type offset, size_type count) const noexcept
  {
    return span(data_ + offset, count);
  }
  TERSE_HOST_DEVICE constexpr span first(size_type count) const noexcept { return span(data_, count); }

  /// The same memory seen as bytes.
  TERSE_HOST_DEVICE auto as_bytes() const noexcept
  {
    using byte_t = std::conditional_t<std::is_const_v<T>, const std::byte, std::byte>;
    return span<byte_t, Space>(reinterpret_cast<byte_t*>(data_), size_bytes());
  }

  /// A host span as a std::span, for code that speaks the standard type.
  constexpr std::span<T> as_std() const noexcept requires(Space == memory_space::host)
  {
    return std::span<T>(data_, size_);
  }

 private:
  T* data_ = nullptr;
  size_type size_ = 0;
};

template <class Range>
span(Range&&) -> span<std::remove_reference_t<std::ranges::range_reference_t<Range>>>;

template <class T>
using host_span = span<T, memory_space::host>;
template <class T>
using device_span = span<T, memory_space::device>;

/// Views a raw device pointer; spelled out so device memory is never
/// mistaken for host memory.
template <class T>
TERSE_HOST_DEVICE constexpr device_span<T> on_device(T* data, std::size_t size) noexcept
{
  return device_span<T>(data, size);
}
template <class T>
constexpr host_span<T> on_host(T* data, std::size_t size) noexcept
{
  return host_span<T>(data, size);
}

}  // namespace terse

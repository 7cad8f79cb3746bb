#include <terse/core/span.hpp>

#include <doctest/doctest.h>

#include <array>
#include <type_traits>
#include <vector>

TEST_CASE("host spans view containers and keep 64-bit sizes")
{
  std::vector<float> values{1.0f, 2.0f, 3.0f, 4.0f};
  terse::host_span<float> view(values);
  CHECK(view.size() == 4);
  CHECK(view.size_bytes() == 16);
  CHECK(view.data() == values.data());
  CHECK(view[2] == 3.0f);

  auto tail = view.subspan(1, 3);
  CHECK(tail.size() == 3);
  CHECK(tail[0] == 2.0f);

  terse::host_span<const float> read_only = view;  // adding const is implicit
  CHECK(read_only.data() == values.data());
  auto bytes = read_only.as_bytes();
  static_assert(std::is_same_v<decltype(bytes), terse::host_span<const std::byte>>);
  CHECK(bytes.size() == 16);

  const std::size_t big = (std::size_t{1} << 33) + 5;
  const terse::host_span<float> huge(nullptr, big);  // never dereferenced
  CHECK(huge.size() == big);
  CHECK(huge.size_bytes() == big * 4);
}

TEST_CASE("the memory space is part of the span's type")
{
  static_assert(terse::host_span<float>::space == terse::memory_space::host);
  static_assert(terse::device_span<float>::space == terse::memory_space::device);
  // no conversion across spaces, and no container -> device span
  static_assert(!std::is_convertible_v<terse::host_span<float>, terse::device_span<float>>);
  static_assert(!std::is_convertible_v<terse::device_span<float>, terse::host_span<float>>);
  static_assert(!std::is_constructible_v<terse::device_span<float>, std::vector<float>&>);
  // const never drops
  static_assert(!std::is_convertible_v<terse::host_span<const float>, terse::host_span<float>>);
  static_assert(std::is_convertible_v<terse::device_span<float>, terse::device_span<const float>>);
  static_assert(terse::any_span<terse::device_span<const double>>);
  static_assert(!terse::any_span<std::vector<float>>);

  std::array<int, 3> data{};
  auto view = terse::span(data);
  static_assert(std::is_same_v<decltype(view), terse::host_span<int>>);
  CHECK(view.as_std().size() == 3);
}

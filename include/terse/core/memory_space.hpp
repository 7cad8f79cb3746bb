#pragma once
/// @file
/// Where a buffer lives. The space is part of every call (a span type or a
/// tag), never a global build switch, so one binary holds host and device
/// collectives.

#include <string_view>

namespace terse {

enum class memory_space { host, device };

constexpr std::string_view to_string(memory_space space) noexcept
{
  return space == memory_space::host ? "host" : "device";
}

/// Tags for calls that take no span but still need to know the space.
struct host_tag {
  static constexpr memory_space value = memory_space::host;
};
struct device_tag {
  static constexpr memory_space value = memory_space::device;
};
inline constexpr host_tag host{};
inline constexpr device_tag device{};

}  // namespace terse

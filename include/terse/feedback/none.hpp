#pragma once
/// @file
/// `feedback::none`: compression error is dropped. Costs nothing.

#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

namespace terse::feedback {

struct none {
  static constexpr bool stateful = false;
  void compensate(bucket_id, host_span<float>) noexcept {}
  void remember(bucket_id, host_span<const float>, host_span<const float>) noexcept {}
};

}  // namespace terse::feedback

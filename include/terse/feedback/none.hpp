#pragma once
/// @file
/// `feedback::none`: compression error is dropped. Costs nothing.

#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

namespace terse::feedback {

struct none {
  static constexpr bool stateful = false;
  host_span<const float> compensate(bucket_id, host_span<const float> gradient) const noexcept { return gradient; }
  void commit(bucket_id, host_span<const float>, host_span<const float>) const noexcept {}
};

}  // namespace terse::feedback

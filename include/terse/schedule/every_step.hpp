#pragma once
/// @file
/// `schedule::every_step`: synchronous SGD. Gradients are averaged after
/// every backward pass; parameters are never averaged (they stay equal
/// because every rank applies the same averaged gradient).

#include <terse/core/policy_types.hpp>

namespace terse::schedule {

struct every_step {
  sync_action on_gradients(const step_context&) noexcept { return sync_action::average; }
  sync_action on_parameters(const step_context&) noexcept { return sync_action::skip; }
};

}  // namespace terse::schedule

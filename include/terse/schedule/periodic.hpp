#pragma once
/// @file
/// `schedule::periodic`: local SGD / FedAvg. Every rank takes `period` (H)
/// local optimizer steps on its own gradients, then the parameters are
/// averaged (with the collective's compressor: a compressed model average).

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/state_io.hpp>

#include <cstdint>
#include <ostream>

namespace terse::schedule {

class periodic {
 public:
  /// @param period H: average the parameters after every H optimizer steps
  explicit periodic(std::uint64_t period = 8) : period_(period)
  {
    TERSE_EXPECTS(period >= 1, "the averaging period is at least one step");
  }

  std::uint64_t period() const noexcept { return period_; }

  sync_action on_gradients(const step_context&) const noexcept { return sync_action::skip; }
  sync_action on_parameters(const step_context& ctx) const noexcept
  {
    return (ctx.step + 1) % period_ == 0 ? sync_action::average : sync_action::skip;
  }

  friend std::ostream& operator<<(std::ostream& os, const periodic& p)
  {
    return os << "periodic{H=" << p.period_ << '}';
  }

 private:
  std::uint64_t period_;
};

}  // namespace terse::schedule

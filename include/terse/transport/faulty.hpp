#pragma once
/// @file
/// `terse::faulty<Inner>`: injects one planned fault on one rank, so tests
/// can show that a failed, slow, dead or silent peer gives an error on every
/// rank and never a hang.
///
/// @code
/// terse::run_local(4, [&](terse::local_transport& t) {
///   terse::faulty f(t, terse::fault_plan{.rank = 2, .at_call = 5, .kind = terse::fault_kind::kill});
///   train(f);  // rank 2 dies at its sixth verb call; ranks 0, 1, 3 get errc::peer_failed at once
/// });
/// @endcode
///
/// The decorator counts this rank's verb calls over all verbs with one
/// counter (a sendrecv, an in-place allreduce and a start_exchange are one
/// call each; test and wait of an exchange are not calls). On rank
/// `plan.rank`, the call with zero-based index `plan.at_call` (the one after
/// `at_call` calls went through) meets the fault, before it enters the
/// inner transport:
/// - `fail`: throws errc::peer_failed ("injected failure ..."). Later calls
///   go through. Peers learn of it when the rank's code reports the
///   exception (run_local does) or by timing out.
/// - `delay`: sleeps `plan.delay`, then makes the call. Peers succeed if the
///   delay is shorter than their timeout and time out otherwise.
/// - `kill`: calls `inner.abort(reason)` when the inner transport has one
///   (local_transport does, so peers learn at once), then throws
///   errc::peer_failed; every later call on this rank throws too.
/// - `silent`: never enters the verb: sleeps `plan.delay`, then throws
///   errc::timeout; every later call throws errc::peer_failed. Peers see a
///   silent rank and time out when `plan.delay` is longer than their timeout
///   (a shorter one lets run_local report the throw first).
/// Every other rank forwards untouched.
///
/// `split(colour, key)` and `split_shared()` (when `Inner` has them) return a
/// `faulty` over the inner transport's sub-transport, held by value: the
/// same fault for the same process, i.e. on the rank that is `plan.rank`
/// here the sub-transport's plan names its sub rank (on every other rank it
/// names none), with the same kind, delay and at_call counted over the
/// sub-transport's own calls from zero. The fault can therefore fire once on
/// each transport. A rank a `kill` or `silent` fault stopped cannot split
/// (errc::peer_failed); the split itself is not a counted call.

#include <terse/core/error.hpp>
#include <terse/transport/detail/decorator_base.hpp>

#include <chrono>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace terse {

enum class fault_kind : std::uint8_t {
  fail,    ///< throw at the call
  delay,   ///< hold the call, then make it
  kill,    ///< report this rank dead to its peers, throw, and stay dead
  silent,  ///< stop answering: peers time out
};

constexpr std::string_view to_string(fault_kind kind) noexcept
{
  switch (kind) {
    case fault_kind::fail: return "fail";
    case fault_kind::delay: return "delay";
    case fault_kind::kill: return "kill";
    case fault_kind::silent: return "silent";
  }
  return "unknown";
}

/// Which rank misbehaves, when and how. The default plan injects nothing.
struct fault_plan {
  int rank = -1;              ///< the rank hit; -1: none
  std::uint64_t at_call = 0;  ///< zero-based index of the verb call hit, over all verbs
  fault_kind kind = fault_kind::fail;
  /// `delay`: how long the call is held; `silent`: how long the rank stays
  /// quiet before it throws.
  std::chrono::milliseconds delay{0};
};

inline std::ostream& operator<<(std::ostream& out, const fault_plan& plan)
{
  return out << "fault_plan{rank " << plan.rank << ", at call " << plan.at_call << ", " << to_string(plan.kind)
             << ", delay " << plan.delay.count() << " ms}";
}

inline std::string to_string(const fault_plan& plan)
{
  std::ostringstream text;
  text << plan;
  return text.str();
}

/// Forwards every verb of `Inner`, except that rank `plan.rank` meets the
/// planned fault at call `plan.at_call` (file comment).
/// @tparam Inner a terse transport with `rank()` and `size()` and any of the
///         verbs; an `abort(std::string_view)` member lets `kill` tell the
///         peers at once. A value type is held by value (move it in), an
///         lvalue reference type by reference; `terse::faulty f(t, plan)`
///         deduces the reference from an lvalue `t`.
template <class Inner>
class faulty : public detail::decorator_base<faulty<Inner>, Inner> {
  using base = detail::decorator_base<faulty<Inner>, Inner>;
  friend base;

 public:
  explicit faulty(Inner inner, fault_plan plan = {}) : base(std::forward<Inner>(inner)), plan_(plan) {}

  const fault_plan& plan() const noexcept { return plan_; }
  /// Verb calls made through this decorator, the faulted and refused included.
  std::uint64_t calls() const noexcept { return calls_; }
  /// Whether the planned fault has happened on this rank.
  bool fired() const noexcept { return fired_; }

  /// False once a `kill` or `silent` fault hit this rank, else the inner's.
  bool healthy() const
  {
    if constexpr (detail::inner_has_healthy<typename base::inner_type>) {
      return !dead_ && this->inner().healthy();
    } else {
      return !dead_;
    }
  }

 private:
  template <class Forward>
  void intercept(const detail::verb_call& call, Forward& forward)
  {
    const std::uint64_t index = calls_++;
    if (dead_) {
      TERSE_FAIL(errc::peer_failed, "rank " + std::to_string(this->rank()) + " was stopped by an injected " +
                                        std::string(to_string(plan_.kind)) + " fault; it makes no more calls");
    }
    if (this->rank() != plan_.rank || index != plan_.at_call) {
      forward();
      return;
    }
    fired_ = true;
    const std::string what = "injected " + std::string(to_string(plan_.kind)) + " fault on rank " +
                             std::to_string(this->rank()) + " at call " + std::to_string(index) + " (" +
                             std::string(call.name()) + ")";
    switch (plan_.kind) {
      case fault_kind::fail: TERSE_FAIL(errc::peer_failed, "injected failure: " + what);
      case fault_kind::delay:
        std::this_thread::sleep_for(plan_.delay);
        forward();
        return;
      case fault_kind::kill:
        dead_ = true;
        if constexpr (detail::inner_has_abort<typename base::inner_type>) {
          this->inner().abort(what);
        }
        TERSE_FAIL(errc::peer_failed, what);
      case fault_kind::silent:
        dead_ = true;
        std::this_thread::sleep_for(plan_.delay);
        TERSE_FAIL(errc::timeout, what + ": the rank stayed silent for " + std::to_string(plan_.delay.count()) + " ms");
    }
    TERSE_FAIL(errc::invalid_argument, "fault_plan.kind is not a fault_kind");
  }

  template <class Forward>
  auto intercept_split(Forward& forward)
  {
    if (dead_) {
      TERSE_FAIL(errc::peer_failed, "rank " + std::to_string(this->rank()) + " was stopped by an injected " +
                                        std::string(to_string(plan_.kind)) + " fault; it cannot split");
    }
    auto sub = forward();
    fault_plan plan = plan_;
    plan.rank = this->rank() == plan_.rank ? sub.rank() : -1;
    return faulty<decltype(sub)>(std::move(sub), plan);
  }

  fault_plan plan_;
  std::uint64_t calls_ = 0;
  bool fired_ = false;
  bool dead_ = false;
};

// Deduce a reference from an lvalue, a value from an rvalue. (No trailing
// pack: the constructor's own guide would be preferred over one.)
template <class T>
faulty(T&&) -> faulty<T>;
template <class T>
faulty(T&&, fault_plan) -> faulty<T>;

}  // namespace terse

#pragma once
/// @file
/// Policies given as constructor arguments, in any order: each argument is
/// recognised by the concept it models (compressor, feedback, schedule) or
/// is the options aggregate, so `terse::allreduce sync(t, shape,
/// compress::topk{.density = 0.01f}, feedback::residual{})` deduces every
/// type and leaves the others at their defaults.

#include <terse/compress/identity.hpp>
#include <terse/core/concepts.hpp>
#include <terse/feedback/none.hpp>
#include <terse/schedule/every_step.hpp>

#include <type_traits>
#include <utility>

namespace terse::detail {

enum class policy_kind { none, options, compressor, feedback, schedule };

template <class A, class Options>
constexpr policy_kind kind_of() noexcept
{
  using P = std::remove_cvref_t<A>;
  if constexpr (std::is_same_v<P, Options>) {
    return policy_kind::options;
  } else if constexpr (concepts::compressor<P>) {
    return policy_kind::compressor;
  } else if constexpr (concepts::feedback<P>) {
    return policy_kind::feedback;
  } else if constexpr (concepts::schedule<P>) {
    return policy_kind::schedule;
  } else {
    return policy_kind::none;
  }
}

/// Every argument is a policy or the options, and no kind comes twice.
template <class Options, class... Args>
concept policy_arguments = ((kind_of<Args, Options>() != policy_kind::none) && ...) &&
                           ((kind_of<Args, Options>() == policy_kind::options) + ... + 0) <= 1 &&
                           ((kind_of<Args, Options>() == policy_kind::compressor) + ... + 0) <= 1 &&
                           ((kind_of<Args, Options>() == policy_kind::feedback) + ... + 0) <= 1 &&
                           ((kind_of<Args, Options>() == policy_kind::schedule) + ... + 0) <= 1;

/// The type of the argument of kind `K`, or `Default`.
template <policy_kind K, class Options, class Default, class... Args>
struct policy_of {
  using type = Default;
};
template <policy_kind K, class Options, class Default, class A, class... Rest>
struct policy_of<K, Options, Default, A, Rest...> {
  using type = std::conditional_t<kind_of<A, Options>() == K, std::remove_cvref_t<A>,
                                  typename policy_of<K, Options, Default, Rest...>::type>;
};

template <class Options, class... Args>
using compressor_of = typename policy_of<policy_kind::compressor, Options, compress::identity, Args...>::type;
template <class Options, class... Args>
using feedback_of = typename policy_of<policy_kind::feedback, Options, feedback::none, Args...>::type;
template <class Options, class... Args>
using schedule_of = typename policy_of<policy_kind::schedule, Options, schedule::every_step, Args...>::type;

/// The argument of type `Want`, or a default `Want`.
template <class Want>
Want pick_policy()
{
  return Want{};
}
template <class Want, class A, class... Rest>
Want pick_policy(A&& a, Rest&&... rest)
{
  if constexpr (std::is_same_v<std::remove_cvref_t<A>, Want>) {
    return Want(std::forward<A>(a));
  } else {
    return pick_policy<Want>(std::forward<Rest>(rest)...);
  }
}

}  // namespace terse::detail

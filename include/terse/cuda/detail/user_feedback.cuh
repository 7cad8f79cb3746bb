#pragma once
/// @file
/// The device feedback customization point (terse::cuda::runs_on_device,
/// below): a user's feedback rule runs on device buffers through a twin
/// class the rule's namespace names with device_feedback_for, found by
/// argument-dependent lookup; terse's own rules specialise
/// detail::device_feedback in cuda/feedback.cuh.

#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>

#include <cuda_runtime_api.h>

#include <concepts>
#include <type_traits>
#include <utility>

namespace terse::detail {

/// The device twin of a host feedback rule F.
template <class F>
struct device_feedback;

/// A user's feedback rule F on device buffers: the twin type named by the
/// customization point device_feedback_for(const F&), found by
/// argument-dependent lookup in F's namespace (see terse::cuda below).
template <class F>
using user_device_feedback_t = decltype(device_feedback_for(std::declval<const F&>()));

template <class F>
concept has_user_device_feedback = requires(const F& f)
{
  device_feedback_for(f);
};

template <class F>
requires has_user_device_feedback<F>
struct device_feedback<F> : user_device_feedback_t<F> {
  using twin_type = user_device_feedback_t<F>;
  static_assert(std::is_default_constructible_v<twin_type>,
                "device feedback twin: default-constructible (the collective makes one on its first device step)");
  static_assert(
      requires {
        {
          twin_type::stateful
          } -> std::convertible_to<bool>;
      },
      "device feedback twin: add `static constexpr bool stateful`");
  static_assert(
      requires(twin_type & d, F& host, bucket_id id, device_span<const float> g, cudaStream_t s) {
        {
          d.compensate(host, id, g, s)
          } -> std::convertible_to<device_span<const float>>;
        d.commit(id, g, g, s);
      },
      "device feedback twin: add `device_span<const float> compensate(F&, bucket_id, device_span<const float>, "
      "cudaStream_t)` and `void commit(bucket_id, device_span<const float> compensated, device_span<const float> "
      "decoded, cudaStream_t)`");
  static_assert(
      !requires(const F& f, state_writer& w) { f.save(w); } ||
          requires(const twin_type& d, twin_type& m, state_writer& w, state_reader& r) {
            d.save(w);
            m.load(r);
          },
      "device feedback twin: F saves state, so the twin needs save() and load() in F's format (state "
      "moves between host and device through it)");
};

/// Whether the device path can run feedback rule F.
template <class F>
concept has_device_feedback = requires
{
  sizeof(device_feedback<F>);
};

}  // namespace terse::detail

namespace terse::cuda {

/// The device feedback customization point. terse's own rules have device
/// twins already; for a rule F of your own, write a twin class D in F's
/// namespace and declare (no definition needed: it is only named in
/// decltype)
///
///     D device_feedback_for(const F&);
///
/// D is default-constructible and offers
///
///     static constexpr bool stateful;
///     device_span<const float> compensate(F& host, bucket_id, device_span<const float> g, cudaStream_t);
///     void commit(bucket_id, device_span<const float> compensated, device_span<const float> decoded, cudaStream_t);
///     void save(state_writer&) const;  void load(state_reader&);  // F's own format, when F saves state
///
/// and optionally begin_step(F&, device_span<const float> whole_gradient,
/// int world, cudaStream_t). compensate() must change nothing that lasts
/// (stage into scratch); commit() runs once the step succeeded. The
/// collective moves F's host state into D once (F::save, D::load) and saves
/// D in F's place, so checkpoints move between host and device.
/// docs/extending.md walks through one.
template <class F>
inline constexpr bool runs_on_device = detail::has_device_feedback<F>;

}  // namespace terse::cuda

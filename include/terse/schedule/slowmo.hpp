#pragma once
/// @file
/// `schedule::slowmo<Base>`: slow momentum (Wang, Tantia, Ballas, Rabbat
/// 2019; seed 002) over any base schedule. Whenever the base averages (every
/// H steps for periodic, on FDA's variance test, on an event), with x̄ the
/// average of the ranks' models, x₀ the outer iterate the block started
/// from and γ the inner learning rate:
///
///     u  ← β u + (x₀ − x̄) / γ
///     x₀ ← x₀ − α γ u
///
/// and every rank continues from x₀. With β = 0 and α = 1 this is the base
/// schedule exactly (x₀ = x̄, computed so that it is bit for bit).
///
/// @code
/// terse::allreduce<terse::compress::qsgd<15>, terse::feedback::residual, terse::local_transport,
///                  terse::schedule::slowmo<>>
///     sync(transport, shape, {}, {}, {},
///          terse::schedule::slowmo<>(terse::schedule::periodic(8), {.beta = 0.6, .lr = 0.05, .average_delta = true}));
/// sync.schedule().start(params);  // x₀: the model every rank starts from
/// @endcode
///
/// Costs nothing between syncs beyond the base's own monitoring; keeps x₀
/// and u (2 floats per parameter).

#include <terse/core/concept_checks.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/stream.hpp>
#include <terse/schedule/detail/device_hooks.hpp>
#include <terse/schedule/detail/outer_loop.hpp>
#include <terse/schedule/detail/outer_math.hpp>
#include <terse/schedule/periodic.hpp>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace terse::schedule {

struct slowmo_config {
  /// α: the slow learning rate (> 0).
  double alpha = 1.0;
  /// β: the slow momentum, in [0, 1).
  double beta = 0.5;
  /// γ: the inner (fast) learning rate the trainer uses (> 0); follow a
  /// learning-rate schedule with set_lr().
  double lr = 0.1;
  /// Over a base that only decides (periodic): average the delta from the
  /// block's start point instead of the model (recommended with lossy
  /// codecs; with the identity codec both agree up to rounding).
  bool average_delta = false;

  friend std::ostream& operator<<(std::ostream& os, const slowmo_config& c)
  {
    return os << "{alpha=" << c.alpha << ", beta=" << c.beta << ", lr=" << c.lr << ", average_delta=" << c.average_delta
              << '}';
  }
};

/// @tparam Base a concepts::schedule that averages parameters (periodic,
///         adaptive_interval, event_triggered, fda, ...)
template <class Base = periodic>
class slowmo {
  static_assert(concepts::check_schedule<Base>());

 public:
  explicit slowmo(Base base = Base{}, slowmo_config config = {})
      : loop_(std::move(base), config.average_delta), config_(config)
  {
    TERSE_EXPECTS(std::isfinite(config_.alpha) && config_.alpha > 0.0, "the slow learning rate alpha is positive");
    TERSE_EXPECTS(config_.beta >= 0.0 && config_.beta < 1.0, "the slow momentum beta lies in [0, 1)");
    set_lr(config_.lr);
  }

  const slowmo_config& config() const noexcept { return config_; }
  Base& base() noexcept { return loop_.base(); }
  const Base& base() const noexcept { return loop_.base(); }

  /// The inner learning rate γ from now on (u is kept in units of γ).
  void set_lr(double lr)
  {
    TERSE_EXPECTS(std::isfinite(lr) && lr > 0.0, "the inner learning rate gamma is positive");
    config_.lr = lr;
  }

  /// x₀: the parameters every rank starts from (the same on every rank);
  /// also the base's start. Without it the first average becomes x₀.
  void start(host_span<const float> parameters)
  {
    loop_.start(parameters);
    momentum_.assign(parameters.size(), 0.0f);
  }

  /// x₀ on device buffers, on `stream`.
  void start(device_span<const float> parameters, stream_ref stream = {})
  {
    detail::device_schedule<slowmo>::start(*this, parameters, stream);
  }

  /// Forwarded to the base (adaptive_interval).
  void observe_loss(double local_loss) requires detail::observes_loss<Base> { loop_.base().observe_loss(local_loss); }

  sync_action on_gradients(const step_context& ctx) requires concepts::schedule_decides_gradients<Base>
  {
    return loop_.base().on_gradients(ctx);
  }
  template <class Averager>
  requires(!concepts::schedule_decides_gradients<Base> &&
           concepts::schedule_observes_gradients<Base, Averager>) sync_action
      on_gradients(const step_context& ctx, host_span<float> gradients, Averager& averager)
  {
    return loop_.base().on_gradients(ctx, gradients, averager);
  }
  template <class Averager>
  requires(!concepts::schedule_decides_gradients<Base> &&
           concepts::schedule_observes_gradients<Base, Averager>) sync_action
      on_gradients(const step_context& ctx, device_span<float> gradients, Averager& averager, stream_ref stream = {})
  {
    return loop_.base().on_gradients(ctx, gradients, averager, stream);
  }

  /// After the optimizer step: the base's hook; when it averaged, the slow
  /// momentum step, and every rank continues from x₀.
  template <class Averager>
  sync_action on_parameters(const step_context& ctx, host_span<float> parameters, Averager& averager)
  {
    if (!loop_.started()) {  // size the buffers before the first average
      momentum_.reserve(parameters.size());
    }
    if (!loop_.block_averaged(ctx, parameters, averager)) {
      return sync_action::skip;
    }
    if (loop_.started()) {
      outer_step(parameters);
    } else {
      momentum_.assign(parameters.size(), 0.0f);
    }
    loop_.continue_from(host_span<const float>(parameters));
    ++outer_steps_;
    return sync_action::average;
  }

  /// The same on device buffers, its arithmetic as kernels on `stream`
  /// (needs <terse/cuda/schedules.cuh>; bit-identical to the host path).
  template <class Averager>
  sync_action on_parameters(const step_context& ctx, device_span<float> parameters, Averager& averager,
                            stream_ref stream = {})
  {
    return detail::device_schedule<slowmo>::on_parameters(*this, ctx, parameters, averager, stream);
  }

  /// The slow momentum u.
  host_span<const float> momentum() const noexcept { return host_span<const float>(momentum_); }
  /// The outer iterate x₀ (where every rank began the current block).
  host_span<const float> outer_iterate() const noexcept { return loop_.start_point(); }
  std::uint64_t outer_steps() const noexcept { return outer_steps_; }

  void save(state_writer& out) const
  {
    TERSE_CHECK(device_.empty(), errc::unsupported,
                "slowmo: save() covers host buffers, and this schedule ran on device buffers");
    out.section("schedule::slowmo");
    out.value(config_.lr);
    out.array(host_span<const float>(momentum_));
    out.value(outer_steps_);
    loop_.save(out);
  }

  void load(state_reader& in)
  {
    in.section("schedule::slowmo");
    config_.lr = in.value<double>();
    momentum_.assign(in.peek_array_length(), 0.0f);
    in.array(host_span<float>(momentum_));
    outer_steps_ = in.value<std::uint64_t>();
    loop_.load(in);
  }

  friend std::ostream& operator<<(std::ostream& os, const slowmo& s)
  {
    os << "slowmo" << s.config_;
    if constexpr (requires { os << s.base(); }) {
      os << " over " << s.base();
    }
    return os;
  }

 private:
  friend struct detail::device_schedule<slowmo>;

  // x₀ − αγu_new written as x̄ + ((1 − α)(x₀ − x̄) − αγβu): the same value,
  // and exactly x̄ when α = 1 and β = 0.
  void outer_step(host_span<float> parameters)
  {
    const host_span<const float> x0 = loop_.start_point();
    TERSE_EXPECTS(parameters.size() == x0.size() && momentum_.size() == x0.size(),
                  "the parameters have " + std::to_string(parameters.size()) + " elements but the outer iterate " +
                      std::to_string(x0.size()));
    const double alpha = config_.alpha;
    const double beta = config_.beta;
    const double gamma = config_.lr;
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      detail::slowmo_element(parameters[i], momentum_[i], x0[i], alpha, beta, gamma);
    }
  }

  detail::outer_loop<Base> loop_;
  slowmo_config config_;
  std::vector<float> momentum_;
  std::uint64_t outer_steps_ = 0;
  detail::device_twin device_;  // the outer loop's vectors on the device
};

}  // namespace terse::schedule

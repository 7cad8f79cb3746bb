#pragma once
/// @file
/// `schedule::bmuf<Base>`: block-wise model update filtering (Chen & Huo
/// 2016) over any base schedule. Whenever the base averages, with x̄ the
/// average of the ranks' models, x_s the point every rank began the block
/// from, x₀ the global model, η the block momentum and ζ the block learning
/// rate:
///
///     G  = x̄ − x_s                 (the block's aggregated update)
///     Δ  ← η Δ + ζ G
///     x₀ ← x₀ + Δ
///
/// and every rank begins the next block from x_s = x₀ + η Δ (Nesterov block
/// momentum, the paper's NBM) or from x_s = x₀ (classical block momentum,
/// CBM, where x_s is x₀ itself). With η = 0 and ζ = 1 this is the base
/// schedule exactly (computed so that it is bit for bit).
///
/// Costs nothing between syncs beyond the base's own monitoring; keeps x₀,
/// Δ and x_s (3 floats per parameter).

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

struct bmuf_config {
  /// η: block momentum, in [0, 1).
  double block_momentum = 0.9;
  /// ζ: block learning rate (> 0).
  double block_lr = 1.0;
  /// Begin each block from x₀ + ηΔ (NBM) rather than x₀ (CBM).
  bool nesterov = true;
  /// Over a base that only decides (periodic): average the delta from the
  /// block's start point instead of the model (recommended with lossy codecs).
  bool average_delta = false;

  friend std::ostream& operator<<(std::ostream& os, const bmuf_config& c)
  {
    return os << "{block_momentum=" << c.block_momentum << ", block_lr=" << c.block_lr << ", nesterov=" << c.nesterov
              << ", average_delta=" << c.average_delta << '}';
  }
};

/// @tparam Base a concepts::schedule that averages parameters (periodic,
///         adaptive_interval, event_triggered, fda, ...)
template <class Base = periodic>
class bmuf {
  static_assert(concepts::check_schedule<Base>());

 public:
  explicit bmuf(Base base = Base{}, bmuf_config config = {})
      : loop_(std::move(base), config.average_delta), config_(config)
  {
    TERSE_EXPECTS(config_.block_momentum >= 0.0 && config_.block_momentum < 1.0,
                  "the block momentum eta lies in [0, 1)");
    TERSE_EXPECTS(std::isfinite(config_.block_lr) && config_.block_lr > 0.0, "the block learning rate is positive");
  }

  const bmuf_config& config() const noexcept { return config_; }
  Base& base() noexcept { return loop_.base(); }
  const Base& base() const noexcept { return loop_.base(); }

  /// x₀: the parameters every rank starts from (the same on every rank);
  /// also the base's start. Without it the first average becomes x₀.
  void start(host_span<const float> parameters)
  {
    loop_.start(parameters);
    global_.assign(parameters.begin(), parameters.end());
    update_.assign(parameters.size(), 0.0f);
  }

  /// x₀ on device buffers, on `stream`.
  void start(device_span<const float> parameters, stream_ref stream = {})
  {
    detail::device_schedule<bmuf>::start(*this, parameters, stream);
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

  /// After the optimizer step: the base's hook; when it averaged, the block
  /// momentum step, and every rank begins the next block from x_s.
  template <class Averager>
  sync_action on_parameters(const step_context& ctx, host_span<float> parameters, Averager& averager)
  {
    if (!loop_.started()) {  // size the buffers before the first average
      global_.reserve(parameters.size());
      update_.reserve(parameters.size());
    }
    if (!loop_.block_averaged(ctx, parameters, averager)) {
      return sync_action::skip;
    }
    if (loop_.started()) {
      outer_step(parameters);
    } else {
      global_.assign(parameters.begin(), parameters.end());
      update_.assign(parameters.size(), 0.0f);
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
    return detail::device_schedule<bmuf>::on_parameters(*this, ctx, parameters, averager, stream);
  }

  /// The global model x₀.
  host_span<const float> global_model() const noexcept { return host_span<const float>(global_); }
  /// The filtered block update Δ.
  host_span<const float> block_update() const noexcept { return host_span<const float>(update_); }
  /// Where every rank began the current block (x₀ + ηΔ or x₀).
  host_span<const float> start_point() const noexcept { return loop_.start_point(); }
  std::uint64_t outer_steps() const noexcept { return outer_steps_; }

  void save(state_writer& out) const
  {
    TERSE_CHECK(device_.empty(), errc::unsupported,
                "bmuf: save() covers host buffers, and this schedule ran on device buffers");
    out.section("schedule::bmuf");
    out.array(host_span<const float>(global_));
    out.array(host_span<const float>(update_));
    out.value(outer_steps_);
    loop_.save(out);
  }

  void load(state_reader& in)
  {
    in.section("schedule::bmuf");
    global_.assign(in.peek_array_length(), 0.0f);
    in.array(host_span<float>(global_));
    update_.assign(in.peek_array_length(), 0.0f);
    in.array(host_span<float>(update_));
    outer_steps_ = in.value<std::uint64_t>();
    loop_.load(in);
  }

  friend std::ostream& operator<<(std::ostream& os, const bmuf& b)
  {
    os << "bmuf" << b.config_;
    if constexpr (requires { os << b.base(); }) {
      os << " over " << b.base();
    }
    return os;
  }

 private:
  friend struct detail::device_schedule<bmuf>;

  // x₀ + Δ_new written as x̄ + ((x₀ − x_s) + (ηΔ + (ζ − 1)G)): the same
  // value, and exactly x̄ when η = 0 and ζ = 1.
  void outer_step(host_span<float> parameters)
  {
    const host_span<const float> start = loop_.start_point();
    TERSE_EXPECTS(parameters.size() == start.size() && global_.size() == start.size() && update_.size() == start.size(),
                  "the parameters have " + std::to_string(parameters.size()) + " elements but the global model " +
                      std::to_string(start.size()));
    const double eta = config_.block_momentum;
    const double zeta = config_.block_lr;
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      detail::bmuf_element(parameters[i], global_[i], update_[i], start[i], eta, zeta, config_.nesterov);
    }
  }

  detail::outer_loop<Base> loop_;
  bmuf_config config_;
  std::vector<float> global_;
  std::vector<float> update_;
  std::uint64_t outer_steps_ = 0;
  detail::device_twin device_;  // the outer loop's vectors on the device
};

}  // namespace terse::schedule

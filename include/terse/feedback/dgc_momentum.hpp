#pragma once
/// @file
/// `feedback::dgc_momentum`: Deep Gradient Compression's momentum correction
/// (Lin et al. 2018). Momentum is accumulated locally, before compression,
/// so sparsified updates keep their momentum:
///
///     g <- clip(g)                 local clipping: ||g|| <= max_norm / sqrt(W)
///     m <- mu m + g;  v <- v + m;  c = C(v)
///     v <- v - decode(c)           the sent part leaves the accumulator
///     m <- 0 where c sent          momentum factor masking
///
/// plus density warm-up: the compressor's density decays exponentially from
/// `warmup_density` to its target over `warmup_steps` (the collective asks
/// adjusted_density() each step when the codec has a `density`). Use it with
/// an optimizer *without* momentum: the momentum lives here.

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/feedback/detail/buffers.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <span>

namespace terse::feedback {

struct dgc_config {
  float momentum = 0.9f;  ///< mu
  float max_norm = 0.0f;  ///< global clipping norm; 0 turns clipping off
  std::uint64_t warmup_steps = 0;
  double warmup_density = 0.25;  ///< density at step 0 of the warm-up

  friend std::ostream& operator<<(std::ostream& os, const dgc_config& c)
  {
    return os << "{momentum=" << c.momentum << ", max_norm=" << c.max_norm << ", warmup_steps=" << c.warmup_steps
              << ", warmup_density=" << c.warmup_density << '}';
  }
};

class dgc_momentum {
 public:
  static constexpr bool stateful = true;

  dgc_momentum() = default;
  explicit dgc_momentum(dgc_config config) : config_(config)
  {
    TERSE_EXPECTS(config.momentum >= 0.0f && config.momentum < 1.0f, "momentum must lie in [0, 1)");
    TERSE_EXPECTS(config.max_norm >= 0.0f, "max_norm must be non-negative");
    TERSE_EXPECTS(config.warmup_density > 0.0 && config.warmup_density <= 1.0, "warmup_density must lie in (0, 1]");
  }

  const dgc_config& config() const noexcept { return config_; }

  /// Called by the collective once per step with every bucket of the
  /// gradient, before any is compensated: computes the clipping factor from
  /// the global norm.
  void begin_step(std::span<const host_span<const float>> buckets, int world)
  {
    clip_ = 1.0f;
    if (config_.max_norm > 0.0f) {
      double sum = 0;
      for (const host_span<const float> bucket : buckets) {
        for (float v : bucket) {
          sum += static_cast<double>(v) * v;
        }
      }
      const double limit = config_.max_norm / std::sqrt(static_cast<double>(world));
      const double norm = std::sqrt(sum);
      if (norm > limit) {
        clip_ = static_cast<float>(limit / norm);
      }
    }
  }
  /// Only clipping looks at the whole gradient: without it (max_norm = 0)
  /// the collective sends each bucket as soon as it is started, overlapping
  /// the exchange with the rest of the backward pass.
  bool needs_whole_gradient() const noexcept { return config_.max_norm > 0.0f; }

  /// The same, for a gradient in one flat buffer.
  void begin_step(host_span<const float> gradient, int world)
  {
    begin_step(std::span<const host_span<const float>>(&gradient, 1), world);
  }

  /// The density to use at `step` for a codec whose target is `target`.
  double adjusted_density(std::uint64_t step, double target) const noexcept
  {
    if (step >= config_.warmup_steps || config_.warmup_density <= target) {
      return target;
    }
    const double progress = static_cast<double>(step) / static_cast<double>(config_.warmup_steps);
    return config_.warmup_density * std::pow(target / config_.warmup_density, progress);
  }

  /// Stages m' = mu m + clip g and v' = v + m'; returns v' (what to compress).
  host_span<const float> compensate(bucket_id id, host_span<const float> gradient)
  {
    const std::size_t n = gradient.size();
    const host_span<const float> m = momentum_.get(id, n);
    const host_span<const float> v = accumulated_.get(id, n);
    const host_span<float> m_next = staged_momentum_.get(id, n);
    const host_span<float> v_next = staged_accumulated_.get(id, n);
    for (std::size_t i = 0; i < n; ++i) {
      m_next[i] = config_.momentum * m[i] + clip_ * gradient[i];
      v_next[i] = v[i] + m_next[i];
    }
    return v_next;
  }

  /// v = v' - decoded; m = m' with every sent coordinate zeroed.
  void commit(bucket_id id, host_span<const float> compensated, host_span<const float> decoded)
  {
    const std::size_t n = compensated.size();
    const host_span<float> m = momentum_.get(id, n);
    const host_span<float> v = accumulated_.get(id, n);
    const host_span<const float> m_next = staged_momentum_.get(id, n);
    for (std::size_t i = 0; i < n; ++i) {
      const bool sent = decoded[i] != 0.0f;
      v[i] = compensated[i] - decoded[i];
      m[i] = sent ? 0.0f : m_next[i];
    }
  }

  /// Adds `lost` to the accumulator v at [offset, offset + lost.size()) of
  /// segment `id`, after its commit (what a sparse reduce-scatter owner's
  /// re-selection dropped); the momentum is left as commit masked it.
  void hold_back(bucket_id id, std::size_t offset, host_span<const float> lost)
  {
    const host_span<float> v = accumulated_.existing(id);
    TERSE_EXPECTS(offset + lost.size() <= v.size(), "hold_back past the end of the segment");
    for (std::size_t i = 0; i < lost.size(); ++i) {
      v[offset + i] += lost[i];
    }
  }

  void save(state_writer& out) const
  {
    out.section("feedback::dgc_momentum");
    momentum_.save(out);
    accumulated_.save(out);
  }
  void load(state_reader& in)
  {
    in.section("feedback::dgc_momentum");
    momentum_.load(in);
    accumulated_.load(in);
  }

 private:
  dgc_config config_;
  float clip_ = 1.0f;
  detail::keyed_buffers momentum_;
  detail::keyed_buffers accumulated_;
  detail::keyed_buffers staged_momentum_;
  detail::keyed_buffers staged_accumulated_;
};

}  // namespace terse::feedback

#pragma once
/// @file
/// `feedback::periodic_flush<Inner>`: every `period` steps the collective
/// sends the compensated values uncompressed and the held-back error
/// becomes zero (seed 000 §3.2, "periodically flush the buffer"), so stale
/// residuals cannot pile up. Between flushes it is `Inner` (residual by
/// default).

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/feedback/residual.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace terse::feedback {

template <class Inner = residual>
class periodic_flush {
 public:
  static constexpr bool stateful = true;

  explicit periodic_flush(std::uint64_t period = 100, Inner inner = {}) : period_(period), inner_(std::move(inner))
  {
    TERSE_EXPECTS(period >= 1, "the flush period is at least one step");
  }

  /// True on the steps whose compensated values go out uncompressed.
  bool flush_due(std::uint64_t step) const noexcept { return (step + 1) % period_ == 0; }
  std::uint64_t period() const noexcept { return period_; }

  host_span<const float> compensate(bucket_id id, host_span<const float> gradient)
  {
    return inner_.compensate(id, gradient);
  }
  void commit(bucket_id id, host_span<const float> compensated, host_span<const float> decoded)
  {
    inner_.commit(id, compensated, decoded);
  }

  /// Forwarded to Inner where it has it (the sparse reduce-scatter's drop).
  void hold_back(bucket_id id, std::size_t offset, host_span<const float> lost) requires requires(Inner& i)
  {
    i.hold_back(id, offset, lost);
  }
  {
    inner_.hold_back(id, offset, lost);
  }

  /// Forwarded so a flushed DGC keeps its clipping and warm-up.
  void begin_step(std::span<const host_span<const float>> buckets, int world) requires requires(Inner& i)
  {
    i.begin_step(buckets, world);
  }
  {
    inner_.begin_step(buckets, world);
  }
  bool needs_whole_gradient() const requires requires(const Inner& i) { i.needs_whole_gradient(); }
  {
    return inner_.needs_whole_gradient();
  }
  void begin_step(host_span<const float> gradient, int world) requires requires(Inner& i)
  {
    i.begin_step(gradient, world);
  }
  {
    inner_.begin_step(gradient, world);
  }
  double adjusted_density(std::uint64_t step, double target) const requires requires(const Inner& i)
  {
    i.adjusted_density(step, target);
  }
  {
    return inner_.adjusted_density(step, target);
  }

  Inner& inner() noexcept { return inner_; }
  const Inner& inner() const noexcept { return inner_; }

  void save(state_writer& out) const
  {
    out.section("feedback::periodic_flush");
    out.value(period_);
    inner_.save(out);
  }
  void load(state_reader& in)
  {
    in.section("feedback::periodic_flush");
    TERSE_CHECK(in.value<std::uint64_t>() == period_, errc::io, "periodic_flush state has another period");
    inner_.load(in);
  }

 private:
  std::uint64_t period_;
  Inner inner_;
};

}  // namespace terse::feedback

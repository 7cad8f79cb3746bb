#pragma once
/// @file
/// What slowmo and bmuf share: an outer optimizer over a base schedule. The
/// base decides when the ranks average (periodic's count, FDA's variance
/// test, an event); the outer loop makes sure the parameters then hold the
/// block average x̄, hands them to the outer update, and tells the base where
/// the ranks continue from.
///
/// - A base that only decides (`on_parameters(ctx)`, e.g. periodic): the
///   outer loop averages itself, the model through the averager
///   (x̄ = average(x), what the base alone would make the collective do), or
///   with `average_delta` the delta from the block's start point
///   (x̄ = x_s + average(x − x_s): better with lossy codecs).
/// - A base that drives the exchange (FDA, adaptive_interval,
///   event_triggered): it averages as it always does; afterwards the outer
///   loop calls `base.rebase(x)` so its x_last is the outer iterate.
///
/// The start point x_s (where every rank began the current block) comes from
/// `start(x0)`, or else from the first average (that first block then has no
/// outer step: the outer iterate starts at the first x̄).

#include <terse/core/concepts.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/schedule/detail/reference_model.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace terse::schedule::detail {

template <class S>
concept rebases = requires(S& s, host_span<const float> parameters)
{
  s.rebase(parameters);
};

template <class S>
concept starts = requires(S& s, host_span<const float> parameters)
{
  s.start(parameters);
};

template <class S>
concept observes_loss = requires(S& s, double loss)
{
  s.observe_loss(loss);
};

template <class S>
concept saves_and_loads = requires(const S& cs, S& s, state_writer& out, state_reader& in)
{
  cs.save(out);
  s.load(in);
};

template <class Base>
class outer_loop {
 public:
  outer_loop(Base base, bool average_delta) : base_(std::move(base)), average_delta_(average_delta) {}

  Base& base() noexcept { return base_; }
  const Base& base() const noexcept { return base_; }

  /// True once the start point of the current block is known.
  bool started() const noexcept { return started_; }
  /// Where every rank began the current block.
  host_span<const float> start_point() const noexcept { return host_span<const float>(start_); }

  void start(host_span<const float> parameters)
  {
    set_start(parameters);
    if constexpr (starts<Base>) {
      base_.start(parameters);
    }
  }

  /// Sizes the buffers for `n` parameters ahead of the first average, so
  /// no later step allocates (a no-op once started).
  void reserve(std::size_t n)
  {
    if (!started_) {
      start_.reserve(n);
      if (average_delta_) {
        delta_.reserve(n);
        exact_.reserve(n);
      }
    }
  }

  /// Runs the base's parameter hook. Returns true when the ranks averaged:
  /// `parameters` then hold the block average x̄, the same on every rank.
  template <class Averager>
  bool block_averaged(const step_context& ctx, host_span<float> parameters, Averager& averager)
  {
    reserve(parameters.size());
    if constexpr (concepts::schedule_drives_parameters<Base, Averager>) {
      return base_.on_parameters(ctx, parameters, averager) == sync_action::average;
    } else {
      if (base_.on_parameters(ctx) != sync_action::average) {
        return false;
      }
      if (!average_delta_) {
        averager.average(parameters);
      } else if (!started_) {
        average_exactly(parameters, averager, exact_);
        std::vector<double>().swap(exact_);  // needed once
      } else {
        check_size(parameters.size());
        for (std::size_t i = 0; i < parameters.size(); ++i) {
          delta_[i] = parameters[i] - start_[i];
        }
        averager.average(host_span<float>(delta_));
        for (std::size_t i = 0; i < parameters.size(); ++i) {
          parameters[i] = start_[i] + delta_[i];
        }
      }
      return true;
    }
  }

  /// After the outer update wrote the next start point into `parameters`.
  void continue_from(host_span<const float> parameters)
  {
    if (!started_) {
      set_start(parameters);
    } else {
      check_size(parameters.size());
      std::copy(parameters.begin(), parameters.end(), start_.begin());
    }
    if constexpr (rebases<Base>) {
      base_.rebase(parameters);
    }
  }

  void save(state_writer& out) const
  {
    out.value(static_cast<std::uint8_t>(started_ ? 1 : 0));
    out.array(host_span<const float>(start_));
    if constexpr (saves_and_loads<Base>) {
      base_.save(out);
    }
  }

  void load(state_reader& in)
  {
    started_ = in.value<std::uint8_t>() != 0;
    start_.assign(in.peek_array_length(), 0.0f);
    in.array(host_span<float>(start_));
    delta_.assign(average_delta_ ? start_.size() : 0, 0.0f);
    if constexpr (saves_and_loads<Base>) {
      base_.load(in);
    }
  }

 private:
  void set_start(host_span<const float> parameters)
  {
    start_.assign(parameters.begin(), parameters.end());
    delta_.assign(average_delta_ ? parameters.size() : 0, 0.0f);
    started_ = true;
  }

  void check_size(std::size_t n) const
  {
    TERSE_EXPECTS(n == start_.size(), "the parameters have " + std::to_string(n) +
                                          " elements but the outer optimizer's iterate " +
                                          std::to_string(start_.size()));
  }

  Base base_;
  bool average_delta_;
  bool started_ = false;
  std::vector<float> start_;
  std::vector<float> delta_;   // scratch for average_delta, sized once
  std::vector<double> exact_;  // the first exact average's doubles
};

}  // namespace terse::schedule::detail

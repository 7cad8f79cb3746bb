#pragma once
/// @file
/// The model every rank holds after the last synchronisation (x_last), kept
/// by the schedules that drive the parameter exchange. Averaging goes through
/// the model *delta* Δ = x − x_last, so a lossy codec with error feedback
/// compresses the small drift rather than the whole model:
///
///     Δ = x − x_last;  Δ̄ = average(Δ);  x = x_last + Δ̄;  x_last = x
///
/// Every rank holds the same x_last and receives the same Δ̄, so after a
/// sync every rank holds the same x, bit for bit.
///
/// Where the reference comes from: `start(x0)` (the parameters every rank
/// starts from, identical on all ranks, free), or else `establish()`, one
/// exact dense average of the model through `monitor` on doubles (8 bytes
/// per parameter, uncompressed, metered; done once).

#include <terse/core/error.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/verbs.hpp>
#include <terse/schedule/detail/blocked_sum.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace terse::schedule::detail {

/// Σ (a_i − b_i)² in double, in the fixed blocked order (blocked_sum.hpp)
/// that the device path uses too.
inline double squared_distance(host_span<const float> a, host_span<const float> b) noexcept
{
  return blocked_sum(squared_difference_term{a.data(), b.data()}, a.size());
}

/// Σ a_i² in double (float or double values), in the fixed blocked order.
template <class Value>
double squared_norm(host_span<const Value> a) noexcept
{
  return blocked_sum(square_term<Value>{a.data()}, a.size());
}

/// Averages `parameters` exactly across ranks: dense, uncompressed, through
/// the averager's monitor on doubles (so every rank gets the same bits).
/// `scratch` holds the doubles (reserve it ahead to keep this step free of
/// allocation).
template <class Averager>
void average_exactly(host_span<float> parameters, Averager& averager, std::vector<double>& scratch)
{
  scratch.assign(parameters.begin(), parameters.end());
  averager.monitor(host_span<double>(scratch), reduce_op::average);
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    parameters[i] = static_cast<float>(scratch[i]);
  }
}

class reference_model {
 public:
  /// True once the reference exists (start(), establish() or load()).
  bool ready() const noexcept { return ready_; }
  std::size_t size() const noexcept { return reference_.size(); }
  host_span<const float> reference() const noexcept { return host_span<const float>(reference_); }

  /// Sizes the buffers for `n` parameters ahead of the first sync, so no
  /// later step allocates (call it on every step until ready()).
  void reserve(std::size_t n)
  {
    reference_.reserve(n);
    delta_.reserve(n);
    exact_.reserve(n);
  }

  /// Every rank starts from `parameters` (the same values on every rank).
  void start(host_span<const float> parameters)
  {
    reference_.assign(parameters.begin(), parameters.end());
    delta_.assign(parameters.size(), 0.0f);
    ready_ = true;
  }

  /// After an outer step moved every rank to `parameters`: the new reference.
  void rebase(host_span<const float> parameters)
  {
    check_size(parameters.size());
    std::copy(parameters.begin(), parameters.end(), reference_.begin());
  }

  /// One exact average of the model, dense and uncompressed, through the
  /// averager's monitor (doubles, so the sum of W floats is exact enough to
  /// give every rank the same bits): the reference when none was started.
  template <class Averager>
  void establish(host_span<float> parameters, Averager& averager)
  {
    average_exactly(parameters, averager, exact_);
    start(host_span<const float>(parameters));
    std::vector<double>().swap(exact_);  // needed once: give the memory back
  }

  /// Averages the delta from the reference through the averager's codec and
  /// feedback; leaves the average model in `parameters` and in the
  /// reference. Returns the averaged delta (the global update), valid until
  /// the next call.
  template <class Averager>
  host_span<const float> average_delta(host_span<float> parameters, Averager& averager)
  {
    check_size(parameters.size());
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      delta_[i] = parameters[i] - reference_[i];
    }
    averager.average(host_span<float>(delta_));
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      reference_[i] += delta_[i];
      parameters[i] = reference_[i];
    }
    return host_span<const float>(delta_);
  }

  /// Writes x − x_last into the delta scratch and returns it (valid until
  /// the next call).
  host_span<const float> delta(host_span<const float> parameters)
  {
    check_size(parameters.size());
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      delta_[i] = parameters[i] - reference_[i];
    }
    return host_span<const float>(delta_);
  }

  void save(state_writer& out) const
  {
    out.value(static_cast<std::uint8_t>(ready_ ? 1 : 0));
    out.array(host_span<const float>(reference_));
  }

  void load(state_reader& in)
  {
    ready_ = in.value<std::uint8_t>() != 0;
    reference_.assign(in.peek_array_length(), 0.0f);
    in.array(host_span<float>(reference_));
    delta_.assign(reference_.size(), 0.0f);
  }

 private:
  void check_size(std::size_t n) const
  {
    TERSE_EXPECTS(n == reference_.size(), "the parameters have " + std::to_string(n) +
                                              " elements but the schedule's reference model " +
                                              std::to_string(reference_.size()));
  }

  std::vector<float> reference_;
  std::vector<float> delta_;   // scratch, sized once
  std::vector<double> exact_;  // establish()'s doubles, until it ran
  bool ready_ = false;
};

}  // namespace terse::schedule::detail

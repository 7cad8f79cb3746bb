#pragma once
/// @file
/// `terse::allreduce<Compressor, Feedback, Transport, Schedule>`: averages a
/// flat, bucketed gradient buffer across ranks. The trainer calls it at two
/// points: `on_gradients` after the backward pass and `on_parameters` after
/// the optimizer step; the schedule decides what each call does.
///
/// @code
/// terse::allreduce sync(transport, terse::layout(tensor_sizes, 1 << 20));
/// // training loop, on every rank:
/// backward(grads);
/// sync.on_gradients(terse::host_span<float>(grads));  // averaged in place
/// optimizer_step(params, grads);
/// sync.on_parameters(terse::host_span<float>(params));
/// @endcode

#include <terse/collective/layout.hpp>
#include <terse/compress/identity.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/error.hpp>
#include <terse/feedback/none.hpp>
#include <terse/schedule/every_step.hpp>
#include <terse/transport/local.hpp>

#include <cstdint>
#include <ostream>
#include <type_traits>
#include <utility>

namespace terse {

/// Tunable numbers of an allreduce (types choose structure, this holds values).
struct allreduce_config {
  /// Shared by all ranks: keys every stochastic draw (seed, step, bucket, element).
  std::uint64_t seed = 0x7e55e;

  friend std::ostream& operator<<(std::ostream& os, const allreduce_config& c)
  {
    return os << "{seed=" << c.seed << '}';
  }
};

/// @tparam Compressor a terse::compressor (compress::identity: dense)
/// @tparam Feedback   a terse::feedback rule (feedback::none: no state)
/// @tparam Transport  a terse::collective_transport in the buffers' memory space
/// @tparam Schedule   a terse::schedule (schedule::every_step: synchronous SGD)
template <class Compressor = compress::identity, class Feedback = feedback::none, class Transport = local_transport,
          class Schedule = schedule::every_step>
class allreduce {
  static_assert(concepts::check_compressor<Compressor>());
  static_assert(concepts::check_feedback<Feedback>());
  static_assert(concepts::check_schedule<Schedule>());
  static_assert(std::is_same_v<Compressor, compress::identity>,
                "terse::allreduce: this build has the dense path (compress::identity) only; compressed "
                "aggregation arrives with the compressor library");

 public:
  /// @param transport the communicator, owned by the caller, outliving this object
  /// @param shape     the tensors and buckets of the flat buffers passed later
  allreduce(Transport& transport, layout shape, allreduce_config config = {}, Compressor compressor = {},
            Feedback feedback = {}, Schedule schedule = {})
      : transport_(&transport),
        shape_(std::move(shape)),
        config_(config),
        compressor_(std::move(compressor)),
        feedback_(std::move(feedback)),
        schedule_(std::move(schedule))
  {
  }

  /// After the backward pass: averages `gradients` in place across ranks
  /// when the schedule asks for it. Returns what was done.
  template <memory_space S>
  sync_action on_gradients(span<float, S> gradients)
  {
    const sync_action action = schedule_.on_gradients(step_context{gradient_calls_++});
    if (action == sync_action::average) {
      average(gradients);
    }
    return action;
  }

  /// After the optimizer step: averages `parameters` in place when the
  /// schedule asks for it (local SGD and friends). Returns what was done.
  template <memory_space S>
  sync_action on_parameters(span<float, S> parameters)
  {
    const sync_action action = schedule_.on_parameters(step_context{parameter_calls_++});
    if (action == sync_action::average) {
      average(parameters);
    }
    return action;
  }

  /// Averages `values` across ranks now, bucket by bucket.
  template <memory_space S>
  void average(span<float, S> values)
  {
    static_assert(concepts::check_collective_transport<Transport, S>());
    TERSE_EXPECTS(values.size() == shape_.total(), "the buffer has " + std::to_string(values.size()) +
                                                       " elements but the layout " + std::to_string(shape_.total()));
    for (const bucket& b : shape_.buckets()) {
      transport_->allreduce(values.subspan(b.offset, b.count), reduce_op::average);
    }
  }

  const layout& shape() const noexcept { return shape_; }
  const allreduce_config& config() const noexcept { return config_; }
  Transport& transport() const noexcept { return *transport_; }

 private:
  Transport* transport_;
  layout shape_;
  allreduce_config config_;
  [[no_unique_address]] Compressor compressor_;
  [[no_unique_address]] Feedback feedback_;
  [[no_unique_address]] Schedule schedule_;
  std::uint64_t gradient_calls_ = 0;
  std::uint64_t parameter_calls_ = 0;
};

}  // namespace terse

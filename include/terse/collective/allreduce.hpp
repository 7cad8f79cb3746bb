#pragma once
/// @file
/// (Over 400 lines: the public front-end only, each entry point with its
/// contract; the algorithm is in detail/allreduce_engine.hpp and its .inl files.)
/// `terse::allreduce<Compressor, Feedback, Transport, Schedule>`: averages a
/// flat, bucketed buffer across ranks. A trainer either starts each bucket
/// as soon as its gradients exist and waits for all before the optimizer
/// step (communication overlaps the backward pass), or calls the one-liners
/// `on_gradients` after the backward pass and `on_parameters` after the
/// optimizer step, where the schedule decides what each call does.
///
/// @code
/// terse::allreduce sync(transport, shape, terse::compress::topk{.density = 0.01f}, terse::feedback::residual{});
/// // overlapped, on every rank:
/// for (bucket b in the order backward produces them) {
///   backward_into(grads, b);
///   sync.start(b.id, grads_of(b));   // posted now; progresses on every call into sync
/// }
/// sync.wait_all();                   // every bucket averaged, or the same error on every rank
/// // or synchronous:
/// sync.on_gradients(terse::host_span<float>(grads));
/// @endcode

#include <terse/collective/detail/allreduce_engine.hpp>
#include <terse/collective/detail/policy_arguments.hpp>
#include <terse/collective/layout.hpp>
#include <terse/collective/sparse_aggregation.hpp>
#include <terse/compress/identity.hpp>
#include <terse/core/concept_checks.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/error.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/stream.hpp>
#include <terse/feedback/none.hpp>
#include <terse/schedule/every_step.hpp>
#include <terse/transport/local.hpp>

#include <cstdint>
#include <istream>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace terse {

/// Tunable numbers of an allreduce (types choose structure, this holds values).
struct allreduce_config {
  /// Shared by all ranks: keys every stochastic draw (seed, step, bucket, element).
  std::uint64_t seed = 0x7e55e;
  /// On the dense path, scan the averaged result and raise errc::non_finite
  /// on every rank (they all hold the same bits) when it holds NaN or Inf.
  /// Compressed paths always refuse non-finite input, on every rank.
  bool check_finite = true;
  /// How gather-only codecs aggregate (the same on every rank). allgather
  /// is exact; reduce_scatter sends bytes that do not grow with W.
  sparse_aggregation sparse = sparse_aggregation::allgather;

  friend std::ostream& operator<<(std::ostream& os, const allreduce_config& c)
  {
    return os << "{seed=" << c.seed << ", check_finite=" << c.check_finite << ", sparse=" << c.sparse << '}';
  }
};
/// The same aggregate under the name the other collectives use.
using allreduce_options = allreduce_config;

namespace detail {
/// What the device path keeps between steps (scratch, device-resident
/// feedback and codec state), type-erased so the class is the same in host
/// and nvcc translation units and a checkpoint restores into either.
struct device_state_base {
  device_state_base() = default;
  device_state_base(const device_state_base&) = delete;
  device_state_base& operator=(const device_state_base&) = delete;
  virtual ~device_state_base() = default;
  /// Saves the feedback state (and the codec's, returning true, where it
  /// lives on the device); load_policies mirrors it.
  virtual bool save_policies(state_writer& out) const = 0;
  virtual bool load_policies(state_reader& in) = 0;
};

/// The compressed path for device buffers: defined by
/// <terse/cuda/allreduce.cuh>, which a translation unit compiled by nvcc
/// includes to average device buffers with a compressor.
template <class Allreduce>
struct device_path;

template <class Allreduce>
class policies_before_load;

template <class Allreduce>
concept has_device_path = requires
{
  sizeof(device_path<Allreduce>);
};
}  // namespace detail

/// Averages a flat, bucketed buffer across ranks, compressing it with
/// `Compressor`, remembering what compression loses with `Feedback`, when
/// `Schedule` says so. The algorithm follows the codec's aggregation trait
/// (docs/collectives.md): dense and summable payloads are reduce-scattered
/// and allgathered; requantizable ones go to shard owners who average and
/// re-encode them; gather-only ones go to every rank, or, with
/// `allreduce_config::sparse = sparse_aggregation::reduce_scatter`, to shard
/// owners who average and re-select them; PowerSGD runs its own two
/// allreduces. Tensors smaller than the layout's `dense_below` go
/// uncompressed.
///
/// A step is a transaction: non-finite input or a malformed payload on any
/// rank, in any bucket, makes every rank raise the same terse::error, and
/// then no feedback or codec state has changed and the caller's buffers
/// hold exactly what was passed in.
///
/// Move-only: it owns per-bucket scratch and, after device use, device
/// state. Do not move it while a step is in flight.
///
/// @tparam Compressor a concepts::compressor (compress::identity: dense)
/// @tparam Feedback   a concepts::feedback rule (feedback::none: no state)
/// @tparam Transport  a transport with collective verbs and grouped
///                    exchanges in the buffers' memory space
/// @tparam Schedule   a concepts::schedule (schedule::every_step: synchronous SGD)
template <class Compressor = compress::identity, class Feedback = feedback::none, class Transport = local_transport,
          class Schedule = schedule::every_step>
class allreduce {
  static_assert(concepts::check_compressor<Compressor>());
  static_assert(concepts::check_feedback<Feedback>());
  static_assert(concepts::check_schedule<Schedule>());
  using engine_type = detail::allreduce_engine<Compressor, Feedback, Transport>;

 public:
  /// @param transport the communicator, owned by the caller, outliving this object
  /// @param shape     the tensors and buckets of the buffers passed later
  allreduce(Transport& transport, layout shape, allreduce_config config = {}, Compressor compressor = {},
            Feedback feedback = {}, Schedule schedule = {})
      : transport_(&transport),
        shape_(std::move(shape)),
        config_(config),
        compressor_(std::move(compressor)),
        feedback_(std::move(feedback)),
        schedule_(std::move(schedule)),
        engine_(shape_)
  {
    if constexpr (requires { compressor_.density; }) {
      target_density_ = static_cast<double>(compressor_.density);
    }
    if constexpr (requires { compressor_.passes_infinity(); }) {
      TERSE_EXPECTS(!(Feedback::stateful && compressor_.passes_infinity()),
                    "a codec that passes Inf into the average (overflow::infinity) cannot be used with error "
                    "feedback: the residual would become infinite; use feedback::none, or overflow::raise");
    }
  }

  /// The policies and options in any order, each at most once; the rest
  /// take their defaults: `allreduce sync(t, shape, compress::topk{...},
  /// feedback::residual{}, allreduce_options{.seed = 7})`.
  template <class... Policies>
  requires(sizeof...(Policies) > 0 && detail::policy_arguments<allreduce_config, Policies...>)
      allreduce(Transport& transport, layout shape, Policies&&... policies)
      : allreduce(transport, std::move(shape), detail::pick_policy<allreduce_config>(policies...),
                  detail::pick_policy<Compressor>(std::forward<Policies>(policies)...),
                  detail::pick_policy<Feedback>(std::forward<Policies>(policies)...),
                  detail::pick_policy<Schedule>(std::forward<Policies>(policies)...))
  {
  }

  allreduce(allreduce&&) noexcept = default;
  allreduce& operator=(allreduce&&) noexcept = default;
  allreduce(const allreduce&) = delete;
  allreduce& operator=(const allreduce&) = delete;
  ~allreduce() = default;

  /// After the backward pass: averages `gradients` in place across ranks
  /// when the schedule asks for it. Returns what was done. Device buffers
  /// take the stream the gradients were produced on.
  template <memory_space S>
  sync_action on_gradients(span<float, S> gradients, stream_ref stream = {})
  {
    const step_context ctx{gradient_calls_};
    sync_action action = sync_action::skip;
    if constexpr (concepts::schedule_observes_gradients<Schedule, allreduce>) {
      if constexpr (S == memory_space::host) {
        action = transactionally([&] { return schedule_.on_gradients(ctx, gradients, *this); });
      } else {
        // The device half (<terse/cuda/schedules.cuh>) orders its state
        // changes after the exchange itself.
        action = schedule_.on_gradients(ctx, gradients, *this, stream);
      }
    } else {
      action = schedule_.on_gradients(ctx);
      if (action == sync_action::average) {
        average(gradients, stream);
      }
    }
    ++gradient_calls_;  // only once the step succeeded: a failed one changes no state
    return action;
  }

  /// After the optimizer step: averages `parameters` in place when the
  /// schedule asks for it (local SGD and friends), or lets a schedule that
  /// drives the exchange (FDA, SlowMo) do it. Returns what was done.
  /// Device buffers with such a schedule need <terse/cuda/schedules.cuh>.
  template <memory_space S>
  sync_action on_parameters(span<float, S> parameters, stream_ref stream = {})
  {
    const step_context ctx{parameter_calls_};
    sync_action action = sync_action::skip;
    if constexpr (concepts::schedule_drives_parameters<Schedule, allreduce>) {
      if constexpr (S == memory_space::host) {
        action = transactionally([&] { return schedule_.on_parameters(ctx, parameters, *this); });
      } else {
        // Runs as kernels on `stream` (<terse/cuda/schedules.cuh>); no
        // host snapshot of the schedule, whose device vectors change only
        // once the exchange succeeded.
        action = schedule_.on_parameters(ctx, parameters, *this, stream);
      }
    } else {
      action = schedule_.on_parameters(ctx);
      if (action == sync_action::average) {
        average(parameters, stream);
      }
    }
    ++parameter_calls_;
    return action;
  }

  /// Starts averaging bucket `id` (its elements: `values`, which must stay
  /// untouched until wait_all returns). Buckets may be started in any order;
  /// ranks match them by id. Also makes progress on buckets in flight.
  void start(bucket_id id, host_span<float> values)
  {
    check_transport<memory_space::host>();
    if (!engine_.in_step()) {
      adjust_density();
    }
    engine_.start(policies(), shape_, id, values);
  }

  /// Makes progress on the buckets in flight without blocking (call it from
  /// the backward pass when it runs long between buckets).
  void poll()
  {
    if (engine_.in_step()) {
      engine_.poll(policies());
    }
  }

  /// Completes the step: every started bucket is averaged in place. Raises
  /// errc::mismatch on every rank when any rank left a bucket unstarted, and
  /// the step's error (non-finite, malformed, timeout, peer failure) on
  /// every rank otherwise; then nothing changed (a transaction).
  void wait_all()
  {
    engine_.finish(policies(), shape_);
    ++exchanges_;
  }

  /// A small uncompressed allreduce for a schedule's monitoring state
  /// (metered and modelled like any verb of the transport).
  void monitor(host_span<double> values, reduce_op op) { transport_->allreduce(values, op); }
  /// The same on device memory, ordered on `stream` (a schedule on device
  /// buffers over a device transport; needs <terse/cuda/allreduce.cuh>).
  template <memory_space S>
  requires(S == memory_space::device &&
           concepts::transport_accepts_memory<Transport, memory_space::device>) void monitor(span<double, S> values,
                                                                                             reduce_op op,
                                                                                             stream_ref stream)
  {
    static_assert(detail::has_device_path<allreduce>,
                  "terse::allreduce: monitoring device buffers needs <terse/cuda/allreduce.cuh> in a translation "
                  "unit compiled by nvcc");
    detail::device_path<allreduce>::monitor(*this, values, op, stream);
  }

  int rank() const { return transport_->rank(); }
  int size() const { return transport_->size(); }

  /// Averages `values` (the whole layout) now: every bucket started, then
  /// waited for. One exchange step. Device buffers are averaged on
  /// `stream` (or the transport's own).
  template <memory_space S>
  void average(span<float, S> values, stream_ref stream = {})
  {
    TERSE_EXPECTS(values.size() == shape_.total(), "the buffer has " + std::to_string(values.size()) +
                                                       " elements but the layout " + std::to_string(shape_.total()));
    if constexpr (S == memory_space::host) {
      (void)stream;
      for (const bucket& b : shape_.buckets()) {
        start(b.id, values.subspan(b.offset, b.count));
      }
      wait_all();
    } else {
      average_on_device(values, stream);
    }
  }

  /// Saves every piece of state (feedback, codec, schedule, counters) with
  /// a header naming the world size, rank, layout and codec.
  void save(std::ostream& out) const;
  /// Restores what save() wrote; a blob from another world size, rank,
  /// layout or codec raises terse::error(errc::io).
  void load(std::istream& in);

  const layout& shape() const noexcept { return shape_; }
  const allreduce_config& config() const noexcept { return config_; }
  Transport& transport() const noexcept { return *transport_; }
  Compressor& compressor() noexcept { return compressor_; }
  Feedback& feedback() noexcept { return feedback_; }
  Schedule& schedule() noexcept { return schedule_; }
  /// Exchanges done so far (the step that keys the next one's draws).
  std::uint64_t step() const noexcept { return exchanges_; }

  /// From the next step on, the compressed segments flagged 1 in
  /// `by_segment` (one flag per layout segment, by id; flags of segments the
  /// layout keeps dense are ignored) go out dense: their compensated values
  /// are averaged exactly and their residual is flushed into that step. The
  /// cost model's `cost::codec_selector` sets them. A collective call: every
  /// rank calls it at the same point with the same flags, which one small
  /// allreduce compares (errc::mismatch on every rank, nothing changed,
  /// where they differ).
  void send_dense(std::span<const std::uint8_t> by_segment)
  {
    TERSE_EXPECTS(!engine_.in_step(), "send_dense between steps, not while buckets are in flight");
    TERSE_EXPECTS(by_segment.size() == shape_.segments().size(),
                  "one flag per layout segment: " + std::to_string(shape_.segments().size()) + ", got " +
                      std::to_string(by_segment.size()));
    std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a over the normalised flags
    for (const std::uint8_t flag : by_segment) {
      hash = (hash ^ (flag != 0 ? 1u : 0u)) * 0x100000001b3ull;
    }
    std::uint64_t both[2] = {hash, ~hash};  // max(h), max(~h) = ~min(h): complements only if all equal
    transport_->allreduce(host_span<std::uint64_t>(both, 2), reduce_op::max);
    TERSE_CHECK(both[0] == ~both[1], errc::mismatch, "ranks chose different segments to send dense");
    dense_.assign(by_segment.size(), 0);
    for (std::size_t s = 0; s < by_segment.size(); ++s) {
      dense_[s] = by_segment[s] != 0 && shape_.segments()[s].compressed ? 1 : 0;
    }
  }
  /// Whether compressed segment `id` goes out dense (send_dense).
  bool sends_dense(bucket_id id) const noexcept { return id < dense_.size() && dense_[id] != 0; }

 private:
  template <class>
  friend struct detail::device_path;
  template <class>
  friend class detail::policies_before_load;

  // The feedback's, codec's and schedule's state, in save()'s order.
  void save_policies(state_writer& w) const;
  void load_policies(state_reader& r);

  template <memory_space S>
  static constexpr void check_transport()
  {
    static_assert(concepts::check_collective_transport<Transport, S>());
    static_assert(concepts::check_exchanging_transport<Transport, S>());
  }

  // A schedule that drives the exchange changes its own state around it
  // (start points, estimates, momenta): put it back if the exchange fails.
  template <class Hook>
  sync_action transactionally(Hook&& hook)
  {
    if constexpr (detail::saves_state<Schedule> && detail::loads_state<Schedule>) {
      schedule_before_.take(schedule_);
      try {
        return hook();
      } catch (...) {
        schedule_before_.restore(schedule_);
        throw;
      }
    } else {
      return hook();
    }
  }

  typename engine_type::policies policies() noexcept
  {
    return {compressor_,
            feedback_,
            *transport_,
            config_.seed,
            exchanges_,
            config_.check_finite,
            config_.sparse == sparse_aggregation::reduce_scatter,
            std::span<const std::uint8_t>(dense_)};
  }

  // DGC's density warm-up: the codec's density for this step.
  void adjust_density()
  {
    if constexpr (
        requires { compressor_.density; } && requires { feedback_.adjusted_density(std::uint64_t{}, double{}); }) {
      compressor_.density =
          static_cast<decltype(compressor_.density)>(feedback_.adjusted_density(exchanges_, target_density_));
    }
  }

  template <memory_space S>
  void average_on_device(span<float, S> values, stream_ref stream)
  {
    static_assert(concepts::check_collective_transport<Transport, S>());
    static_assert(detail::has_device_path<allreduce>,
                  "terse::allreduce: averaging device buffers runs the CUDA path: include "
                  "<terse/cuda/allreduce.cuh> in a translation unit compiled by nvcc");
    detail::check_device_aggregation(config_.sparse, Compressor::aggregation_kind);
    detail::device_path<allreduce>::average(*this, values, stream);
    ++exchanges_;
  }

  /// The codec context of segment `id` this step (the device path's).
  codec_context context(bucket_id id) const noexcept
  {
    codec_context ctx;
    ctx.seed = config_.seed;
    ctx.step = exchanges_;
    ctx.bucket = id;
    ctx.rank = transport_->rank();
    ctx.world = transport_->size();
    return ctx;
  }

  Transport* transport_;
  layout shape_;
  allreduce_config config_;
  [[no_unique_address]] Compressor compressor_;
  [[no_unique_address]] Feedback feedback_;
  [[no_unique_address]] Schedule schedule_;
  std::uint64_t gradient_calls_ = 0;
  std::uint64_t parameter_calls_ = 0;
  std::uint64_t exchanges_ = 0;
  double target_density_ = 0.0;
  std::vector<std::uint8_t> dense_;  // per segment: sent dense (send_dense)
  engine_type engine_;
  detail::state_snapshot schedule_before_;
  /// Device scratch and feedback state, made by the CUDA path on first use.
  std::unique_ptr<detail::device_state_base> device_state_;
};

/// `allreduce sync(transport, shape, policies...)` deduces the transport
/// and every policy given; the rest take their defaults.
template <class Transport, class... Policies>
requires detail::policy_arguments<allreduce_config, Policies...> allreduce(Transport&, layout, Policies&&...)
->allreduce<detail::compressor_of<allreduce_config, Policies...>, detail::feedback_of<allreduce_config, Policies...>,
            Transport, detail::schedule_of<allreduce_config, Policies...>>;

}  // namespace terse

#include <terse/collective/detail/allreduce_state.inl>

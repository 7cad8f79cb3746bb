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

#include <terse/collective/detail/exchange.hpp>
#include <terse/collective/detail/framing.hpp>
#include <terse/collective/layout.hpp>
#include <terse/compress/identity.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/error.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/stream.hpp>
#include <terse/feedback/none.hpp>
#include <terse/schedule/every_step.hpp>
#include <terse/transport/detail/partition.hpp>
#include <terse/transport/local.hpp>

#include <cstdint>
#include <istream>
#include <memory>
#include <ostream>
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

  friend std::ostream& operator<<(std::ostream& os, const allreduce_config& c)
  {
    return os << "{seed=" << c.seed << ", check_finite=" << c.check_finite << '}';
  }
};

namespace detail {
/// A feedback rule whose residual a fused codec can write directly.
template <class F>
concept stages_residual = requires(F& f, bucket_id id, std::size_t n)
{
  {
    f.error(id, n)
    } -> std::convertible_to<host_span<const float>>;
  {
    f.staging(id, n)
    } -> std::convertible_to<host_span<float>>;
  f.commit_staged(id);
};

template <class F>
concept flushes = requires(const F& f, std::uint64_t step)
{
  {
    f.flush_due(step)
    } -> std::convertible_to<bool>;
};

template <class P>
concept saves_state = requires(const P& p, state_writer& out)
{
  p.save(out);
};

/// What the device path keeps between steps (scratch, device-resident
/// feedback and codec state). Host code sees only this interface, so a
/// collective whose state lives on the device can still be saved and
/// restored from any translation unit.
struct device_state_base {
  virtual ~device_state_base() = default;
  virtual void save_policies(state_writer& out) const = 0;
  virtual void load_policies(state_reader& in) = 0;
};

/// The compressed path for device buffers: defined by
/// <terse/cuda/allreduce.cuh>, which a translation unit compiled by nvcc
/// includes to average device buffers with a compressor.
template <class Allreduce>
struct device_path;

template <class Allreduce>
concept has_device_path = requires
{
  sizeof(device_path<Allreduce>);
};
}  // namespace detail

/// Averages a flat, bucketed buffer across ranks, compressing it with
/// `Compressor`, remembering what compression loses with `Feedback`, when
/// `Schedule` says so. The algorithm follows the codec's aggregation trait:
///
/// - identity: one plain allreduce per bucket (dense);
/// - summable (casts, random-k, PowerSGD factors): one allreduce of the
///   encoded values (PowerSGD runs its own two);
/// - requantizable (b-bit, QSGD, sign, TernGrad): every rank encodes W
///   shards and sends shard s to rank s (all-to-all), the owner decodes the
///   W contributions in rank order, averages and re-encodes them, and an
///   allgather hands every rank the same W payloads to decode, so replicas
///   stay bit-identical;
/// - gather-only (top-k, threshold, DGC): allgather every rank's payload and
///   decode them all in rank order.
///
/// Tensors smaller than the layout's `dense_below` go uncompressed. Non-finite
/// input on any rank, or a payload that fails validation, raises the same
/// terse::error on every rank after the exchange, and no feedback state
/// changes (the gradient buffer's contents are then unspecified).
///
/// @tparam Compressor a concepts::compressor (compress::identity: dense)
/// @tparam Feedback   a concepts::feedback rule (feedback::none: no state)
/// @tparam Transport  a concepts::collective_transport in the buffers' memory
///                    space; requantizable codecs also need sendrecv
/// @tparam Schedule   a concepts::schedule (schedule::every_step: synchronous SGD)
template <class Compressor = compress::identity, class Feedback = feedback::none, class Transport = local_transport,
          class Schedule = schedule::every_step>
class allreduce {
  static_assert(concepts::check_compressor<Compressor>());
  static_assert(concepts::check_feedback<Feedback>());
  static_assert(concepts::check_schedule<Schedule>());

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
    if constexpr (requires { compressor_.density; }) {
      target_density_ = static_cast<double>(compressor_.density);
    }
  }

  /// After the backward pass: averages `gradients` in place across ranks
  /// when the schedule asks for it. Returns what was done. Device buffers
  /// take the stream the gradients were produced on.
  template <memory_space S>
  sync_action on_gradients(span<float, S> gradients, stream_ref stream = {})
  {
    const step_context ctx{gradient_calls_++};
    if constexpr (concepts::schedule_observes_gradients<Schedule, allreduce>) {
      static_assert(S == memory_space::host, "this schedule reads the gradients: pass host buffers");
      return schedule_.on_gradients(ctx, gradients, *this);
    } else {
      const sync_action action = schedule_.on_gradients(ctx);
      if (action == sync_action::average) {
        average(gradients, stream);
      }
      return action;
    }
  }

  /// After the optimizer step: averages `parameters` in place when the
  /// schedule asks for it (local SGD and friends), or lets a schedule that
  /// drives the exchange (FDA, SlowMo) do it. Returns what was done.
  template <memory_space S>
  sync_action on_parameters(span<float, S> parameters, stream_ref stream = {})
  {
    const step_context ctx{parameter_calls_++};
    if constexpr (concepts::schedule_drives_parameters<Schedule, allreduce>) {
      static_assert(S == memory_space::host, "this schedule reads the parameters: pass host buffers");
      return schedule_.on_parameters(ctx, parameters, *this);
    } else {
      const sync_action action = schedule_.on_parameters(ctx);
      if (action == sync_action::average) {
        average(parameters, stream);
      }
      return action;
    }
  }

  /// A small uncompressed allreduce for a schedule's monitoring state
  /// (metered and modelled like any verb of the transport).
  void monitor(host_span<double> values, reduce_op op) { transport_->allreduce(values, op); }

  int rank() const { return transport_->rank(); }
  int size() const { return transport_->size(); }

  /// Averages `values` across ranks now, bucket by bucket; one exchange
  /// step (it advances the step that keys draws and feedback). Device
  /// buffers are averaged on `stream` (or the transport's own).
  template <memory_space S>
  void average(span<float, S> values, stream_ref stream = {})
  {
    static_assert(concepts::check_collective_transport<Transport, S>());
    TERSE_EXPECTS(values.size() == shape_.total(), "the buffer has " + std::to_string(values.size()) +
                                                       " elements but the layout " + std::to_string(shape_.total()));
    if constexpr (std::is_same_v<Compressor, compress::identity>) {
      (void)stream;
      average_dense(values);
    } else if constexpr (S == memory_space::host) {
      (void)stream;
      average_compressed(values);
    } else {
      static_assert(detail::has_device_path<allreduce>,
                    "terse::allreduce: compressed averaging of device buffers runs the CUDA codecs: include "
                    "<terse/cuda/allreduce.cuh> in a translation unit compiled by nvcc");
      detail::device_path<allreduce>::average(*this, values, stream);
    }
    ++exchanges_;
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

 private:
  template <class>
  friend struct detail::device_path;

  template <memory_space S>
  void average_dense(span<float, S> values);
  void average_compressed(host_span<float> values);
  void dense_segments(host_span<float> values, const bucket& b);
  void compressed_segment(host_span<float> values, const segment& seg);
  void flush_segment(host_span<float> values, const segment& seg);
  void summable_path(host_span<float> values, bucket_id id, host_span<const float> comp, const codec_context& ctx);
  void requantizable_path(host_span<float> values, bucket_id id, host_span<const float> comp, bool fused,
                          const codec_context& ctx);
  void gather_path(host_span<float> values, bucket_id id, host_span<const float> comp, bool fused,
                   const codec_context& ctx);
  std::size_t encode_into(host_span<float> values, bucket_id id, host_span<const float> comp, bool fused,
                          const codec_context& ctx, std::size_t offset, std::size_t count, host_span<std::byte> out,
                          detail::frame_status& status);
  void commit(bucket_id id, host_span<const float> comp, bool fused, host_span<const float> own_decoded);
  codec_context context(bucket_id id) const noexcept;
  static void check_finite_or_raise(host_span<const float> values);

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

  // Scratch, grown on first use and reused (hot paths do not allocate).
  std::vector<std::byte> send_;
  std::vector<std::byte> recv_;
  std::vector<std::byte> gathered_;
  std::vector<std::byte> owner_frame_;
  std::vector<float> dense_;
  std::vector<float> owner_sum_;
  std::vector<float> own_decoded_;
  std::vector<std::size_t> counts_;
  std::vector<std::uint64_t> sizes_;
  /// Device scratch and feedback state, made by the CUDA path on first use
  /// (type-erased so the class is the same in host and nvcc translation units).
  std::shared_ptr<detail::device_state_base> device_state_;
};

}  // namespace terse

#include <terse/collective/detail/allreduce.inl>

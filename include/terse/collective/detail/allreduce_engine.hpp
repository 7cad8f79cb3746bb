#pragma once
/// @file
/// The allreduce's algorithm, written once: a step is a set of units (one
/// per compressed segment, one per bucket's dense tensors), each a short
/// sequence of local work and grouped exchanges (phase p uses tag
/// unit tag + p mod 2; messages of one tag match in posting order):
///
/// - dense, summable: (0) block d to rank d (reduce-scatter); fold the W
///   contributions in rank order; (1) own block to all (allgather).
/// - requantizable: (0) shard d's payload to rank d; the owner decodes the W
///   payloads in rank order, averages, re-encodes; (1) owner's payload to all.
/// - gather-only, sparse_aggregation::allgather: (0) payload sizes to all;
///   (1) payload to all; every rank decodes all W in rank order.
/// - gather-only, sparse_aggregation::reduce_scatter, fixed-size codec
///   (top-k): (0) shard d's payload to rank d; the owner decodes the W in
///   rank order, averages, re-selects (re-encodes, phase 1); (1) owner's
///   payload to all; every rank decodes the W shards. 2 round trips.
/// - the same, variable-size codec (threshold, DGC): (0) shard d's payload
///   size to rank d; (1) the payload to rank d; owner as above; (2) the
///   re-selected payload's size to all; (3) the payload to all. 4 round
///   trips, exact sizes (threshold's bound is dense-sized: no padding).
/// - self-reducing (PowerSGD): its own allreduces when the step completes,
///   in unit order.
///
/// In the sparse reduce-scatter, what an owner's re-selection drops, W
/// (average - decoded re-selection) on its shard, is held back by the
/// owner's feedback at commit (allreduce_sparse.inl).
///
/// A unit starts when its bucket does; its later phases are posted whenever
/// the trainer calls into the collective (start, poll, wait_all), so no
/// progress thread is needed. Nothing the caller or the policies can see
/// changes until every unit of the step has finished on every rank without
/// error: results stay in the units, feedback is only staged, and a codec's
/// state is snapshotted and put back on failure (the step is a transaction).

#include <terse/collective/detail/framing.hpp>
#include <terse/collective/detail/state_snapshot.hpp>
#include <terse/collective/detail/step_unit.hpp>
#include <terse/collective/layout.hpp>
#include <terse/compress/identity.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/transport/detail/partition.hpp>
#include <terse/transport/detail/reduce.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace terse::detail {

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

/// A feedback rule that can add to what it holds back (after commit): the
/// sparse reduce-scatter gives it what an owner's re-selection dropped.
template <class F>
concept holds_back = requires(F& f, bucket_id id, std::size_t offset, host_span<const float> lost)
{
  f.hold_back(id, offset, lost);
};

template <class F>
concept flushes = requires(const F& f, std::uint64_t step)
{
  {
    f.flush_due(step)
    } -> std::convertible_to<bool>;
};

/// A feedback rule that looks at the whole gradient before compensating any
/// part of it (DGC's clipping by the global norm).
template <class F>
concept sees_whole_gradient = requires(F& f, std::span<const host_span<const float>> parts, int world)
{
  f.begin_step(parts, world);
};

/// Whether this step's buckets wait for each other, for a rule that sees
/// the whole gradient: it may say it needs no look this step (DGC without
/// clipping), and then every bucket goes out as soon as it is started.
template <class F>
bool holds_whole_gradient(const F& f)
{
  if constexpr (requires {
                  {
                    f.needs_whole_gradient()
                    } -> std::convertible_to<bool>;
                }) {
    return f.needs_whole_gradient();
  } else {
    return true;
  }
}

/// What one step works with. Passed to every call rather than stored, so a
/// collective that moves leaves nothing pointing at its old self.
template <class C, class F, class T>
struct step_policies {
  C& codec;
  F& feedback;
  T& transport;
  std::uint64_t seed;
  std::uint64_t step;
  bool check_finite;
  /// Gather-only codecs: sparse reduce-scatter instead of allgather.
  bool sparse_reduce_scatter = false;
  /// Per compressed segment (by id), 1 where it goes out dense this step
  /// (allreduce::send_dense); empty: none.
  std::span<const std::uint8_t> send_dense{};

  /// Segment `id` goes out dense: its compensated values, residual flushed.
  bool dense_this_step(bucket_id id) const noexcept { return id < send_dense.size() && send_dense[id] != 0; }
};

template <class C, class F, class T>
class allreduce_engine {
 public:
  using policies = step_policies<C, F, T>;
  static constexpr bool compresses = !std::is_same_v<C, compress::identity>;
  static constexpr bool self_reducing = concepts::self_reducing_compressor<C, T>;
  /// Self-reducing in parts: its averages are this engine's exchanges.
  static constexpr bool reduces_in_parts = self_reducing && concepts::staged_reducing_compressor<C>;
  static constexpr bool fusable = concepts::residual_fusing_compressor<C> && stages_residual<F> &&
                                  C::aggregation_kind != aggregation::summable && !self_reducing;
  static constexpr bool whole_gradient = sees_whole_gradient<F>;
  /// The sparse reduce-scatter's payload sizes are known in advance (top-k).
  static constexpr bool fixed_size = concepts::fixed_size_compressor<C>;

  explicit allreduce_engine(const layout& shape)
      : units_(plan_units(shape, compresses)),
        started_(shape.buckets().size(), 0),
        values_(shape.buckets().size()),
        parts_(shape.buckets().size())
  {
  }

  allreduce_engine(allreduce_engine&&) noexcept = default;
  allreduce_engine& operator=(allreduce_engine&&) noexcept = default;
  allreduce_engine(const allreduce_engine&) = delete;
  allreduce_engine& operator=(const allreduce_engine&) = delete;
  ~allreduce_engine() = default;

  bool in_step() const noexcept { return in_step_; }

  /// Starts bucket `bucket` (its values: `values`), then makes progress.
  void start(policies p, const layout& shape, std::size_t bucket, host_span<float> values);
  /// Makes progress on every unit in flight without blocking.
  void poll(policies p);
  /// Completes the step: on success every result is in the caller's buffers
  /// and the feedback is committed; otherwise nothing changed and the
  /// step's error (the same on every rank) is raised.
  void finish(policies p, const layout& shape);

 private:
  void begin_step(policies& p);
  void launch(policies& p, const layout& shape, step_unit& u);
  void launch_compressed(policies& p, const layout& shape, step_unit& u);
  void launch_or_poison(policies& p, const layout& shape, step_unit& u);
  void advance(policies& p, step_unit& u);
  void drive(policies& p, step_unit& u, bool block);
  void run_self_reducing(policies& p, step_unit& u);
  void staged_begin(policies& p, step_unit& u);
  std::size_t staged_first_count(policies& p, const layout& shape, step_unit& u);
  void staged_advance(policies& p, step_unit& u);
  void poison(policies& p, const layout& shape, step_unit& u);
  void commit(policies& p, const layout& shape);
  void end_step() noexcept;

  void post(policies& p, step_unit& u, int phase);
  template <class E>
  void reduce_scatter(policies& p, step_unit& u, host_span<const E> elements, int phase = 0);
  template <class E>
  void fold_and_allgather(policies& p, step_unit& u, host_span<const E> elements, E* out, int phase = 1);
  void finish_dense(policies& p, step_unit& u);
  void finish_summable(policies& p, step_unit& u);
  void requantize_begin(policies& p, step_unit& u);
  void requantize_owner(policies& p, step_unit& u);
  void requantize_end(policies& p, step_unit& u);
  void gather_begin(policies& p, step_unit& u);
  void gather_payloads(policies& p, step_unit& u);
  void gather_end(policies& p, step_unit& u);
  void sparse_begin(policies& p, step_unit& u);
  void sparse_to_owners(policies& p, step_unit& u);
  void sparse_owner(policies& p, step_unit& u);
  void sparse_from_owners(policies& p, step_unit& u);
  void sparse_end(policies& p, step_unit& u);
  void sparse_advance(policies& p, step_unit& u);
  void keep_reselection_error(policies& p, step_unit& u, bool committed);
  host_span<const std::byte> contribution(policies& p, const step_unit& u, int source) const;
  host_span<const std::byte> reselected(policies& p, const step_unit& u, int owner) const;
  std::size_t encode_into(policies& p, step_unit& u, const codec_context& ctx, std::size_t offset, std::size_t count,
                          host_span<std::byte> out, frame_status& status);
  void decode_own(policies& p, step_unit& u, const codec_context& ctx, host_span<const std::byte> payload,
                  std::size_t offset, std::size_t count, frame_status& status);
  codec_context context(const policies& p, const step_unit& u) const noexcept;
  std::size_t wire_elements(policies& p, const step_unit& u) const;
  std::size_t frame_room(policies& p, const step_unit& u, int shard) const;

  std::vector<step_unit> units_;
  std::vector<char> started_;  // char, not bool: no packed vector<bool>
  std::vector<host_span<float>> values_;
  std::vector<host_span<const float>> parts_;
  std::size_t started_count_ = 0;
  bool in_step_ = false;
  std::vector<outgoing<>> sends_;
  std::vector<incoming<>> recvs_;
  std::vector<std::byte> poison_bytes_;
  std::exception_ptr failure_;  ///< the first transport error of the step
  state_snapshot codec_before_;
};

}  // namespace terse::detail

#include <terse/collective/detail/allreduce_paths.inl>
#include <terse/collective/detail/allreduce_sparse.inl>
#include <terse/collective/detail/allreduce_step.inl>

#pragma once
// The aggregation paths of detail::allreduce_engine (allreduce_engine.hpp):
// what each unit does before, between and after its exchanges.

namespace terse::detail {

template <class C, class F, class T>
codec_context allreduce_engine<C, F, T>::context(const policies& p, const step_unit& u) const noexcept
{
  codec_context ctx;
  ctx.seed = p.seed;
  ctx.step = p.step;
  ctx.rank = p.transport.rank();
  ctx.world = p.transport.size();
  ctx.bucket = static_cast<std::uint32_t>(u.segment_id);
  ctx.tensors = u.shapes;
  return ctx;
}

template <class C, class F, class T>
std::size_t allreduce_engine<C, F, T>::wire_elements(policies& p, const step_unit& u) const
{
  if constexpr (concepts::summable_compressor<C>) {
    return p.codec.wire_count(u.count) + 1;  // + the count of ranks whose input was not finite
  } else {
    (void)p;
    (void)u;
    return 0;
  }
}

// The room of shard `shard`'s frame (requantizable) or of the whole
// payload (gather-only, shard < 0).
template <class C, class F, class T>
std::size_t allreduce_engine<C, F, T>::frame_room(policies& p, const step_unit& u, int shard) const
{
  const std::size_t n = shard < 0 ? u.count : block_of(u.count, p.transport.size(), shard).count;
  return frame_header_bytes + p.codec.max_encoded_bytes(n);
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::launch(policies& p, const layout& shape, step_unit& u)
{
  const bucket& b = shape.buckets()[u.bucket];
  const host_span<float> values = values_[u.bucket];
  u.status = frame_status::ok;
  u.failed = false;
  u.flush = false;
  u.fused = false;
  u.reselected = false;
  at_least(u.result, u.count);
  if (u.kind == unit_kind::dense) {
    if (u.whole_bucket) {
      u.input = values;
    } else {
      float* packed = at_least(u.packed, u.count);
      for (const segment& seg : shape.segments_of(b)) {
        if (!seg.compressed) {
          packed = std::copy_n(values.data() + (seg.offset - b.offset), seg.count, packed);
        }
      }
      u.input = host_span<const float>(u.packed.data(), u.count);
    }
    reduce_scatter<float>(p, u, u.input);
    return;
  }
  if constexpr (compresses) {
    launch_compressed(p, shape, u);
  }
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::launch_compressed(policies& p, const layout& shape, step_unit& u)
{
  const bucket& b = shape.buckets()[u.bucket];
  const host_span<float> values = values_[u.bucket];
  const segment& seg = shape.segments()[u.segment];
  u.segment_id = seg.id;
  u.shapes = shape.shapes_of(seg);
  u.input = values.subspan(seg.offset - b.offset, seg.count);
  bool flush = p.dense_this_step(seg.id);
  if constexpr (flushes<F>) {
    flush = flush || p.feedback.flush_due(p.step);
  }
  if (flush) {  // compensated values go out dense; nothing is held back
    u.flush = true;
    u.compensated = p.feedback.compensate(seg.id, u.input);
    reduce_scatter<float>(p, u, u.compensated);
    return;
  }
  u.fused = fusable;
  u.compensated = fusable ? u.input : p.feedback.compensate(seg.id, u.input);
  if constexpr (reduces_in_parts) {
    staged_begin(p, u);
  } else if constexpr (self_reducing) {
    u.stage = unit_stage::waiting;  // its blocking allreduces run when the step completes
  } else if constexpr (C::aggregation_kind == aggregation::summable) {
    static_assert(concepts::summable_compressor<C>,
                  "terse::allreduce: a summable codec needs wire_type, wire_count, encode_values and decode_values");
    using wire_t = typename C::wire_type;
    const std::size_t m = wire_elements(p, u) - 1;
    auto* local = reinterpret_cast<wire_t*>(at_least(u.send, (m + 1) * sizeof(wire_t)));
    at_least(u.owner, (m + 1) * sizeof(wire_t));
    const host_span<wire_t> wire(local, m + 1);
    bool finite = true;
    try {
      p.codec.encode_values(context(p, u), u.compensated, wire.first(m));
    } catch (const error& e) {
      if (e.code() != errc::non_finite) {
        throw;
      }
      finite = false;
      std::fill(wire.begin(), wire.end(), wire_t(0.0f));
    }
    wire[m] = wire_t(finite ? 0.0f : 1.0f);
    reduce_scatter<wire_t>(p, u, host_span<const wire_t>(wire));
  } else if constexpr (C::aggregation_kind == aggregation::requantizable) {
    requantize_begin(p, u);
  } else if (p.sparse_reduce_scatter) {
    sparse_begin(p, u);
  } else {
    gather_begin(p, u);
  }
}

// --- dense and summable: reduce-scatter, fold in rank order, allgather ---------

template <class C, class F, class T>
template <class E>
void allreduce_engine<C, F, T>::reduce_scatter(policies& p, step_unit& u, host_span<const E> elements, int phase)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  const block_range mine = block_of(elements.size(), world, rank);
  auto* slots = reinterpret_cast<E*>(at_least(u.recv, mine.count * static_cast<std::size_t>(world) * sizeof(E)));
  sends_.clear();
  recvs_.clear();
  for (int r = 0; r < world; ++r) {
    if (r != rank) {
      const block_range theirs = block_of(elements.size(), world, r);
      sends_.push_back(outgoing<>{r, bytes_of(elements.data() + theirs.begin, theirs.count)});
      recvs_.push_back(incoming<>{r, writable_bytes_of(slots + static_cast<std::size_t>(r) * mine.count, mine.count)});
    }
  }
  post(p, u, phase);
}

template <class C, class F, class T>
template <class E>
void allreduce_engine<C, F, T>::fold_and_allgather(policies& p, step_unit& u, host_span<const E> elements, E* out,
                                                   int phase)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  const block_range mine = block_of(elements.size(), world, rank);
  const auto* slots = reinterpret_cast<const E*>(u.recv.data());
  reduce_rank_order<E>(
      reduce_op::average, world, mine.count,
      [&](int r) {
        return r == rank ? elements.data() + mine.begin : slots + static_cast<std::size_t>(r) * mine.count;
      },
      1, [&](int) { return out + mine.begin; });
  sends_.clear();
  recvs_.clear();
  for (int r = 0; r < world; ++r) {
    if (r != rank) {
      const block_range theirs = block_of(elements.size(), world, r);
      sends_.push_back(outgoing<>{r, bytes_of(out + mine.begin, mine.count)});
      recvs_.push_back(incoming<>{r, writable_bytes_of(out + theirs.begin, theirs.count)});
    }
  }
  post(p, u, phase);
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::finish_dense(policies& p, step_unit& u)
{
  u.stage = unit_stage::done;
  // Every rank holds the same bits, so every rank decides alike.
  if ((u.whole_bucket && !u.flush && !p.check_finite) || all_finite(u.result.data(), u.count)) {
    return;
  }
  u.status = frame_status::non_finite;
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::finish_summable(policies& p, step_unit& u)
{
  if constexpr (concepts::summable_compressor<C>) {
    using wire_t = typename C::wire_type;
    u.stage = unit_stage::done;
    const std::size_t m = wire_elements(p, u) - 1;
    const auto* summed = reinterpret_cast<const wire_t*>(u.owner.data());
    if (static_cast<float>(summed[m]) != 0.0f) {
      u.status = frame_status::non_finite;
      return;
    }
    const codec_context ctx = context(p, u);
    if constexpr (F::stateful) {
      const auto* local = reinterpret_cast<const wire_t*>(u.send.data());
      p.codec.decode_values(ctx, host_span<const wire_t>(local, m),
                            host_span<float>(at_least(u.own_decoded, u.count), u.count));
    }
    p.codec.decode_values(ctx, host_span<const wire_t>(summed, m), host_span<float>(u.result.data(), u.count));
  }
}

// --- shared by requantizable and gather-only -----------------------------------

// Encodes [offset, offset + count) of the unit (compensated, or fused with
// the residual) into `out`; a non-finite input marks `status` instead.
template <class C, class F, class T>
std::size_t allreduce_engine<C, F, T>::encode_into(policies& p, step_unit& u, const codec_context& ctx,
                                                   std::size_t offset, std::size_t count, host_span<std::byte> out,
                                                   frame_status& status)
{
  try {
    if constexpr (fusable) {
      return p.codec.encode_residual(ctx, u.input.subspan(offset, count),
                                     p.feedback.error(u.segment_id, u.count).subspan(offset, count),
                                     p.feedback.staging(u.segment_id, u.count).subspan(offset, count), out);
    } else {
      return p.codec.encode(ctx, u.compensated.subspan(offset, count), out);
    }
  } catch (const error& e) {
    if (e.code() != errc::non_finite) {
      throw;
    }
    status = frame_status::non_finite;
    return 0;
  }
}

// What the feedback keeps is what this rank's own payload decodes to. A
// payload this rank cannot decode itself marks `status` malformed.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::decode_own(policies& p, step_unit& u, const codec_context& ctx,
                                           host_span<const std::byte> payload, std::size_t offset, std::size_t count,
                                           frame_status& status)
{
  if constexpr (F::stateful && !fusable) {
    try {
      p.codec.decode_add(ctx, payload, host_span<float>(u.own_decoded.data() + offset, count));
    } catch (const error& e) {
      if (e.code() != errc::malformed_payload) {
        throw;
      }
      status = frame_status::malformed;
    }
  } else {
    (void)p, (void)u, (void)ctx, (void)payload, (void)offset, (void)count, (void)status;
  }
}

}  // namespace terse::detail

#include <terse/collective/detail/allreduce_shards.inl>

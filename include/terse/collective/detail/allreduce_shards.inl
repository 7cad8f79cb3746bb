#pragma once
// The requantizable, gather-only and self-reducing paths of
// detail::allreduce_engine (allreduce_engine.hpp).

namespace terse::detail {

// --- requantizable: shards to owners, owners re-encode, owners' frames to all ----

template <class C, class F, class T>
void allreduce_engine<C, F, T>::requantize_begin(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  const std::size_t block = frame_room(p, u, 0);  // shard 0 is the largest
  std::byte* send = at_least(u.send, block * static_cast<std::size_t>(world));
  std::byte* recv = at_least(u.recv, block * static_cast<std::size_t>(world));
  const codec_context base = context(p, u);
  frame_status own = frame_status::ok;
  for (int s = 0; s < world; ++s) {
    const block_range shard = block_of(u.count, world, s);
    codec_context ctx = base;
    ctx.offset = shard.begin;
    std::byte* frame = send + static_cast<std::size_t>(s) * block;
    const std::size_t length =
        encode_into(p, u, ctx, shard.begin, shard.count,
                    host_span<std::byte>(frame + frame_header_bytes, block - frame_header_bytes), own);
    write_frame(frame, frame_status::ok, length);
  }
  if (own == frame_status::ok && F::stateful && !fusable) {
    std::fill_n(at_least(u.own_decoded, u.count), u.count, 0.0f);
    for (int s = 0; s < world && own == frame_status::ok; ++s) {
      const block_range shard = block_of(u.count, world, s);
      codec_context ctx = base;
      ctx.offset = shard.begin;
      const frame_view f = read_frame(host_span<const std::byte>(send + static_cast<std::size_t>(s) * block, block));
      decode_own(p, u, ctx, f.payload, shard.begin, shard.count, own);
    }
  }
  if (own != frame_status::ok) {  // owners pass the status on, so every rank learns of it
    for (int s = 0; s < world; ++s) {
      write_frame(send + static_cast<std::size_t>(s) * block, own, 0);
    }
  }
  u.status = own;
  sends_.clear();
  recvs_.clear();
  for (int r = 0; r < world; ++r) {
    if (r != rank) {
      sends_.push_back(outgoing<>{r, host_span<const std::byte>(send + static_cast<std::size_t>(r) * block, block)});
      recvs_.push_back(incoming<>{r, host_span<std::byte>(recv + static_cast<std::size_t>(r) * block, block)});
    }
  }
  post(p, u, 0);
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::requantize_owner(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  const std::size_t block = frame_room(p, u, 0);
  const block_range mine = block_of(u.count, world, rank);
  codec_context ctx = context(p, u);
  ctx.offset = mine.begin;
  // The W contributions to this rank's shard, decoded in rank order.
  float* sum = at_least(u.packed, mine.count);
  std::fill_n(sum, mine.count, 0.0f);
  frame_status seen = u.status;
  for (int source = 0; source < world && seen == frame_status::ok; ++source) {
    const std::byte* frame =
        (source == rank ? u.send.data() : u.recv.data()) + static_cast<std::size_t>(source) * block;
    try {
      const frame_view f = read_frame(host_span<const std::byte>(frame, block));
      seen = worst(seen, f.status);
      if (f.status == frame_status::ok) {
        p.codec.decode_add(ctx, f.payload, host_span<float>(sum, mine.count));
      }
    } catch (const error& e) {
      if (e.code() != errc::malformed_payload) {
        throw;
      }
      seen = frame_status::malformed;
    }
  }
  const float inverse = 1.0f / static_cast<float>(world);
  for (std::size_t i = 0; i < mine.count; ++i) {
    sum[i] *= inverse;
  }
  // Re-encoded with fresh draws (phase 1), then sent to every rank.
  std::size_t total = 0;
  for (int s = 0; s < world; ++s) {
    total += frame_room(p, u, s);
  }
  std::byte* gathered = at_least(u.gathered, total);
  std::size_t at = 0;
  std::size_t own_at = 0;
  for (int s = 0; s < rank; ++s) {
    own_at += frame_room(p, u, s);
  }
  const std::size_t own_room = frame_room(p, u, rank);
  std::byte* owner = gathered + own_at;
  std::size_t length = 0;
  if (seen == frame_status::ok) {
    ctx.phase = 1;
    try {
      length = p.codec.encode(ctx, host_span<const float>(sum, mine.count),
                              host_span<std::byte>(owner + frame_header_bytes, own_room - frame_header_bytes));
    } catch (const error& e) {
      if (e.code() != errc::non_finite) {
        throw;
      }
      seen = frame_status::non_finite;  // the average overflowed
    }
  }
  write_frame(owner, seen, length);
  sends_.clear();
  recvs_.clear();
  for (int s = 0; s < world; ++s) {
    const std::size_t room = frame_room(p, u, s);
    if (s != rank) {
      sends_.push_back(outgoing<>{s, host_span<const std::byte>(owner, own_room)});
      recvs_.push_back(incoming<>{s, host_span<std::byte>(gathered + at, room)});
    }
    at += room;
  }
  post(p, u, 1);
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::requantize_end(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  u.stage = unit_stage::done;
  frame_status status = frame_status::ok;
  std::size_t at = 0;
  for (int s = 0; s < world; ++s) {
    const std::size_t room = frame_room(p, u, s);
    try {
      status = worst(status, read_frame(host_span<const std::byte>(u.gathered.data() + at, room)).status);
    } catch (const error& e) {
      if (e.code() != errc::malformed_payload) {
        throw;
      }
      status = frame_status::malformed;
    }
    at += room;
  }
  if (status != frame_status::ok) {
    u.status = status;
    return;
  }
  // Every rank decodes the same bytes, so a malformed payload fails on all.
  std::fill_n(u.result.data(), u.count, 0.0f);
  codec_context ctx = context(p, u);
  ctx.phase = 1;
  at = 0;
  for (int s = 0; s < world; ++s) {
    const std::size_t room = frame_room(p, u, s);
    const block_range shard = block_of(u.count, world, s);
    ctx.offset = shard.begin;
    try {
      const frame_view f = read_frame(host_span<const std::byte>(u.gathered.data() + at, room));
      p.codec.decode_add(ctx, f.payload, host_span<float>(u.result.data() + shard.begin, shard.count));
    } catch (const error& e) {
      if (e.code() != errc::malformed_payload) {
        throw;
      }
      u.status = frame_status::malformed;
      return;
    }
    at += room;
  }
}

// --- gather-only: sizes to all, payloads to all, every rank decodes all -------

template <class C, class F, class T>
void allreduce_engine<C, F, T>::gather_begin(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  const std::size_t room = frame_room(p, u, -1);
  std::byte* send = at_least(u.send, room);
  const codec_context ctx = context(p, u);
  frame_status own = frame_status::ok;
  const std::size_t length = encode_into(
      p, u, ctx, 0, u.count, host_span<std::byte>(send + frame_header_bytes, room - frame_header_bytes), own);
  if (own == frame_status::ok && F::stateful && !fusable) {
    std::fill_n(at_least(u.own_decoded, u.count), u.count, 0.0f);
    decode_own(p, u, ctx, host_span<const std::byte>(send + frame_header_bytes, length), 0, u.count, own);
  }
  write_frame(send, own, own == frame_status::ok ? length : 0);
  const std::size_t own_bytes = frame_header_bytes + (own == frame_status::ok ? length : 0);
  // sizes[r]: what rank r announced; sizes[W]: what this rank sends.
  std::uint64_t* sizes = at_least(u.sizes, static_cast<std::size_t>(world) + 1);
  sizes[world] = own_bytes;
  sizes[rank] = own_bytes;
  sends_.clear();
  recvs_.clear();
  for (int r = 0; r < world; ++r) {
    if (r != rank) {
      sends_.push_back(outgoing<>{r, bytes_of(sizes + world, 1)});
      recvs_.push_back(incoming<>{r, writable_bytes_of(sizes + r, 1)});
    }
  }
  post(p, u, 0);
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::gather_payloads(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  const std::size_t room = frame_room(p, u, -1);
  std::size_t total = 0;
  for (int r = 0; r < world; ++r) {
    const std::uint64_t size = u.sizes[static_cast<std::size_t>(r)];
    if (size < frame_header_bytes || size > room) {  // every rank hears the same size from r
      u.status = frame_status::malformed;
      u.stage = unit_stage::done;
      return;
    }
    total += static_cast<std::size_t>(size);
  }
  std::byte* gathered = at_least(u.gathered, total);
  sends_.clear();
  recvs_.clear();
  std::size_t at = 0;
  for (int r = 0; r < world; ++r) {
    const auto size = static_cast<std::size_t>(u.sizes[static_cast<std::size_t>(r)]);
    if (r == rank) {
      std::memcpy(gathered + at, u.send.data(), size);
    } else {
      sends_.push_back(
          outgoing<>{r, host_span<const std::byte>(u.send.data(), u.sizes[static_cast<std::size_t>(world)])});
      recvs_.push_back(incoming<>{r, host_span<std::byte>(gathered + at, size)});
    }
    at += size;
  }
  post(p, u, 1);
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::gather_end(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  u.stage = unit_stage::done;
  frame_status status = frame_status::ok;
  std::size_t at = 0;
  for (int r = 0; r < world; ++r) {
    const auto size = static_cast<std::size_t>(u.sizes[static_cast<std::size_t>(r)]);
    try {
      status = worst(status, read_frame(host_span<const std::byte>(u.gathered.data() + at, size)).status);
    } catch (const error& e) {
      if (e.code() != errc::malformed_payload) {
        throw;
      }
      status = frame_status::malformed;
    }
    at += size;
  }
  if (status != frame_status::ok) {
    u.status = status;
    return;
  }
  const codec_context ctx = context(p, u);
  std::fill_n(u.result.data(), u.count, 0.0f);
  at = 0;
  for (int r = 0; r < world; ++r) {
    const auto size = static_cast<std::size_t>(u.sizes[static_cast<std::size_t>(r)]);
    try {
      const frame_view f = read_frame(host_span<const std::byte>(u.gathered.data() + at, size));
      p.codec.decode_add(ctx, f.payload, host_span<float>(u.result.data(), u.count));
    } catch (const error& e) {
      if (e.code() != errc::malformed_payload) {
        throw;
      }
      u.status = frame_status::malformed;
      return;
    }
    at += size;
  }
  const float inverse = 1.0f / static_cast<float>(world);
  for (std::size_t i = 0; i < u.count; ++i) {
    u.result[i] *= inverse;
  }
}

// --- self-reducing (PowerSGD): the codec's own allreduces ---------------------

// In parts: the codec's two averages run as this unit's dense exchanges
// (phases 0-1 and 2-3, each a reduce-scatter and an allgather in place in
// the codec's buffer, folded in rank order as the transports' allreduce).
template <class C, class F, class T>
void allreduce_engine<C, F, T>::staged_begin(policies& p, step_unit& u)
{
  if constexpr (reduces_in_parts) {
    std::copy_n(u.compensated.data(), u.count, u.result.data());
    u.factors = p.codec.reduce_first(context(p, u), host_span<const float>(u.result.data(), u.count));
    if (u.factors.empty()) {
      u.stage = unit_stage::done;  // nothing to send: every rank shares the layout, so none does
      return;
    }
    reduce_scatter<float>(p, u, host_span<const float>(u.factors), 0);
  } else {
    (void)p, (void)u;
  }
}

// How many floats the first average of unit `u` holds (0: none, or the
// codec refused), for poisoning a unit this rank never started: the codec
// is asked on zeros, and the failed step restores its state.
template <class C, class F, class T>
std::size_t allreduce_engine<C, F, T>::staged_first_count(policies& p, const layout& shape, step_unit& u)
{
  if constexpr (reduces_in_parts) {
    u.shapes = shape.shapes_of(shape.segments()[u.segment]);
    std::fill_n(at_least(u.result, u.count), u.count, 0.0f);
    try {
      return p.codec.reduce_first(context(p, u), host_span<const float>(u.result.data(), u.count)).size();
    } catch (const error&) {
      return 0;
    }
  } else {
    (void)p, (void)shape, (void)u;
    return 0;
  }
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::staged_advance(policies& p, step_unit& u)
{
  if constexpr (reduces_in_parts) {
    if (u.phase == 0 || u.phase == 2) {
      fold_and_allgather<float>(p, u, host_span<const float>(u.factors), u.factors.data(), u.phase + 1);
      return;
    }
    const codec_context ctx = context(p, u);
    const host_span<float> values(u.result.data(), u.count);
    if (u.phase == 1) {
      u.factors = p.codec.reduce_second(ctx, host_span<const float>(values));
      if (!u.factors.empty()) {
        reduce_scatter<float>(p, u, host_span<const float>(u.factors), 2);
        return;
      }
    }
    u.stage = unit_stage::done;
    try {
      p.codec.reduce_last(ctx, values);
    } catch (const error& e) {
      if (e.code() != errc::non_finite) {
        throw;
      }
      u.status = frame_status::non_finite;  // raised alike on every rank: all saw the same averages
    }
  } else {
    (void)p, (void)u;
  }
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::run_self_reducing(policies& p, step_unit& u)
{
  if constexpr (self_reducing) {
    u.stage = unit_stage::done;
    std::copy_n(u.compensated.data(), u.count, u.result.data());
    try {
      p.codec.reduce(context(p, u), p.transport, host_span<float>(u.result.data(), u.count));
    } catch (const error& e) {
      if (e.code() == errc::non_finite) {
        u.status = frame_status::non_finite;  // raised alike on every rank: all saw the same flag
        return;
      }
      // A transport error: the step ends as a failed one (state restored),
      // not midway.
      if (!failure_) {
        failure_ = std::current_exception();
      }
      u.failed = true;
    }
  } else {
    (void)p, (void)u;
  }
}

}  // namespace terse::detail

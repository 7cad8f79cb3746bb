#pragma once
// The sparse reduce-scatter of detail::allreduce_engine (allreduce_engine.hpp)
// for gather-only codecs, sparse_aggregation::reduce_scatter (SparCML:
// Renggli et al., "SparCML: High-Performance Sparse Communication for
// Machine Learning"; Ok-Topk: Li and Hoefler, "Near-Optimal Sparse Allreduce
// for Distributed Deep Learning"). Each rank encodes its values shard by
// shard (W equal index shards) and sends shard d's payload to rank d; the
// owner decodes the W payloads in rank order, averages and re-selects (re-
// encodes with ctx.phase = 1); every owner's payload then goes to every
// rank, which decodes all W shards. What the re-selection dropped, W
// (average - decoded re-selection) on the owner's shard, is held back by
// the owner's feedback at commit, so the sum over ranks of what is held back
// plus W times the result stays the sum of the compensated inputs.
//
// Bookkeeping in the unit (grown once, reused):
//   u.offsets [0, W]          the shard frames in u.send (prefix sums of their rooms)
//             [W+1, 2W+1]     the contributions this owner received, in u.recv
//             [2W+2, 3W+2]    the owners' frames this rank received, in u.gathered
//   u.sizes   [0, W)          payload frame sizes announced to this owner
//             [W, 2W)         this rank's shard frames
//             [2W, 3W)        sizes announced by the owners
//             [3W]            this owner's re-selected frame
//   u.packed                  the owner's average, then what re-selection dropped

namespace terse::detail {

template <class C, class F, class T>
void allreduce_engine<C, F, T>::sparse_begin(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  const auto w = static_cast<std::size_t>(world);
  u.reselected = true;
  std::size_t* offsets = at_least(u.offsets, 3 * (w + 1));
  std::uint64_t* sizes = at_least(u.sizes, 3 * w + 1);
  offsets[0] = 0;
  for (std::size_t s = 0; s < w; ++s) {
    offsets[s + 1] = offsets[s] + frame_room(p, u, static_cast<int>(s));
  }
  std::byte* send = at_least(u.send, offsets[w]);
  const codec_context base = context(p, u);
  frame_status own = frame_status::ok;
  for (std::size_t s = 0; s < w; ++s) {
    const block_range shard = block_of(u.count, world, static_cast<int>(s));
    codec_context ctx = base;
    ctx.offset = shard.begin;
    std::byte* frame = send + offsets[s];
    const std::size_t room = offsets[s + 1] - offsets[s];
    const std::size_t length =
        encode_into(p, u, ctx, shard.begin, shard.count,
                    host_span<std::byte>(frame + frame_header_bytes, room - frame_header_bytes), own);
    write_frame(frame, frame_status::ok, length);
    sizes[w + s] = frame_header_bytes + length;
  }
  if (own == frame_status::ok && F::stateful && !fusable) {
    std::fill_n(at_least(u.own_decoded, u.count), u.count, 0.0f);
    for (std::size_t s = 0; s < w && own == frame_status::ok; ++s) {
      const block_range shard = block_of(u.count, world, static_cast<int>(s));
      codec_context ctx = base;
      ctx.offset = shard.begin;
      const host_span<const std::byte> payload(send + offsets[s] + frame_header_bytes,
                                               static_cast<std::size_t>(sizes[w + s]) - frame_header_bytes);
      decode_own(p, u, ctx, payload, shard.begin, shard.count, own);
    }
  }
  if (own != frame_status::ok) {  // owners pass the status on, so every rank learns of it
    for (std::size_t s = 0; s < w; ++s) {
      write_frame(send + offsets[s], own, 0);
      sizes[w + s] = frame_header_bytes;
    }
  }
  u.status = own;
  sends_.clear();
  recvs_.clear();
  if constexpr (fixed_size) {
    // Every frame fills its shard's room, so the owner knows each size: no announcements.
    const std::size_t room = frame_room(p, u, rank);
    std::size_t* from = offsets + w + 1;
    from[0] = 0;
    for (int r = 0; r < world; ++r) {
      from[r + 1] = from[r] + (r == rank ? 0 : room);
    }
    std::byte* recv = at_least(u.recv, from[w]);
    for (int r = 0; r < world; ++r) {
      if (r != rank) {
        sends_.push_back(outgoing<>{r, host_span<const std::byte>(send + offsets[r], offsets[r + 1] - offsets[r])});
        recvs_.push_back(incoming<>{r, host_span<std::byte>(recv + from[r], room)});
      }
    }
  } else {
    sizes[rank] = sizes[w + static_cast<std::size_t>(rank)];
    for (int r = 0; r < world; ++r) {
      if (r != rank) {
        sends_.push_back(outgoing<>{r, bytes_of(sizes + w + static_cast<std::size_t>(r), 1)});
        recvs_.push_back(incoming<>{r, writable_bytes_of(sizes + r, 1)});
      }
    }
  }
  post(p, u, 0);
}

// Variable sizes: each shard's payload to its owner, now that the owner
// knows how long each is.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::sparse_to_owners(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  const auto w = static_cast<std::size_t>(world);
  const std::size_t room = frame_room(p, u, rank);
  std::size_t* from = u.offsets.data() + w + 1;
  from[0] = 0;
  for (int r = 0; r < world; ++r) {
    // A size beyond the codec's bound is received only up to it, so the
    // transport reports the mismatch; a size below a frame header fails
    // read_frame (malformed) on the owner, which passes that on.
    const std::uint64_t announced = u.sizes[static_cast<std::size_t>(r)];
    from[r + 1] = from[r] + (r == rank ? 0 : static_cast<std::size_t>(std::min<std::uint64_t>(announced, room)));
  }
  std::byte* recv = at_least(u.recv, from[w]);
  const std::byte* send = u.send.data();
  sends_.clear();
  recvs_.clear();
  for (int r = 0; r < world; ++r) {
    if (r != rank) {
      const auto d = static_cast<std::size_t>(r);
      sends_.push_back(
          outgoing<>{r, host_span<const std::byte>(send + u.offsets[d], static_cast<std::size_t>(u.sizes[w + d]))});
      recvs_.push_back(incoming<>{r, host_span<std::byte>(recv + from[r], from[r + 1] - from[r])});
    }
  }
  post(p, u, 1);
}

// The owner: the W contributions to its shard decoded in rank order,
// averaged, re-selected; then its frame (fixed sizes) or its frame's size
// (variable sizes) to every rank.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::sparse_owner(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  const auto w = static_cast<std::size_t>(world);
  const block_range mine = block_of(u.count, world, rank);
  codec_context ctx = context(p, u);
  ctx.offset = mine.begin;
  float* average = at_least(u.packed, mine.count);
  std::fill_n(average, mine.count, 0.0f);
  frame_status seen = u.status;
  for (int source = 0; source < world && seen == frame_status::ok; ++source) {
    try {
      const frame_view f = read_frame(contribution(p, u, source));
      seen = worst(seen, f.status);
      if (f.status == frame_status::ok) {
        p.codec.decode_add(ctx, f.payload, host_span<float>(average, mine.count));
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
    average[i] *= inverse;
  }
  const std::size_t room = frame_room(p, u, rank);
  std::byte* owner = at_least(u.owner, room);
  std::size_t length = 0;
  if (seen == frame_status::ok) {
    ctx.phase = 1;
    try {
      length = p.codec.encode(ctx, host_span<const float>(average, mine.count),
                              host_span<std::byte>(owner + frame_header_bytes, room - frame_header_bytes));
    } catch (const error& e) {
      if (e.code() != errc::non_finite) {
        throw;
      }
      seen = frame_status::non_finite;  // the average overflowed
    }
  }
  length = seen == frame_status::ok ? length : 0;
  write_frame(owner, seen, length);
  std::uint64_t* sizes = u.sizes.data();
  sizes[3 * w] = frame_header_bytes + length;
  sizes[2 * w + static_cast<std::size_t>(rank)] = sizes[3 * w];
  sends_.clear();
  recvs_.clear();
  if constexpr (fixed_size) {
    std::size_t* at = u.offsets.data() + 2 * (w + 1);
    at[0] = 0;
    for (int s = 0; s < world; ++s) {
      at[s + 1] = at[s] + (s == rank ? 0 : frame_room(p, u, s));
    }
    std::byte* gathered = at_least(u.gathered, at[w]);
    for (int s = 0; s < world; ++s) {
      if (s != rank) {
        sends_.push_back(outgoing<>{s, host_span<const std::byte>(owner, room)});
        recvs_.push_back(incoming<>{s, host_span<std::byte>(gathered + at[s], at[s + 1] - at[s])});
      }
    }
    post(p, u, 1);
  } else {
    for (int s = 0; s < world; ++s) {
      if (s != rank) {
        sends_.push_back(outgoing<>{s, bytes_of(sizes + 3 * w, 1)});
        recvs_.push_back(incoming<>{s, writable_bytes_of(sizes + 2 * w + static_cast<std::size_t>(s), 1)});
      }
    }
    post(p, u, 2);
  }
}

// Variable sizes: every owner's frame to every rank. Every rank heard the
// same size from each owner, so all refuse an impossible one alike.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::sparse_from_owners(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  const auto w = static_cast<std::size_t>(world);
  std::size_t* at = u.offsets.data() + 2 * (w + 1);
  at[0] = 0;
  for (int s = 0; s < world; ++s) {
    const std::uint64_t size = u.sizes[2 * w + static_cast<std::size_t>(s)];
    if (size < frame_header_bytes || size > frame_room(p, u, s)) {
      u.status = frame_status::malformed;
      u.stage = unit_stage::done;
      return;
    }
    at[s + 1] = at[s] + (s == rank ? 0 : static_cast<std::size_t>(size));
  }
  std::byte* gathered = at_least(u.gathered, at[w]);
  sends_.clear();
  recvs_.clear();
  for (int s = 0; s < world; ++s) {
    if (s != rank) {
      sends_.push_back(
          outgoing<>{s, host_span<const std::byte>(u.owner.data(), static_cast<std::size_t>(u.sizes[3 * w]))});
      recvs_.push_back(incoming<>{s, host_span<std::byte>(gathered + at[s], at[s + 1] - at[s])});
    }
  }
  post(p, u, 3);
}

// Every rank decodes the W owners' frames (the same bytes everywhere, so a
// malformed one fails on all); the owner keeps what its re-selection dropped.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::sparse_end(policies& p, step_unit& u)
{
  const int world = p.transport.size();
  u.stage = unit_stage::done;
  frame_status status = frame_status::ok;
  for (int s = 0; s < world; ++s) {
    try {
      status = worst(status, read_frame(reselected(p, u, s)).status);
    } catch (const error& e) {
      if (e.code() != errc::malformed_payload) {
        throw;
      }
      status = frame_status::malformed;
    }
  }
  u.status = status;
  if (status != frame_status::ok) {
    return;
  }
  std::fill_n(u.result.data(), u.count, 0.0f);
  codec_context ctx = context(p, u);
  ctx.phase = 1;
  for (int s = 0; s < world; ++s) {
    const block_range shard = block_of(u.count, world, s);
    ctx.offset = shard.begin;
    try {
      const frame_view f = read_frame(reselected(p, u, s));
      p.codec.decode_add(ctx, f.payload, host_span<float>(u.result.data() + shard.begin, shard.count));
    } catch (const error& e) {
      if (e.code() != errc::malformed_payload) {
        throw;
      }
      u.status = frame_status::malformed;
      return;
    }
  }
  if constexpr (F::stateful) {
    const block_range mine = block_of(u.count, world, p.transport.rank());
    const float weight = static_cast<float>(world);
    float* dropped = u.packed.data();
    for (std::size_t i = 0; i < mine.count; ++i) {
      dropped[i] = weight * (dropped[i] - u.result[mine.begin + i]);
    }
  }
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::sparse_advance(policies& p, step_unit& u)
{
  if constexpr (fixed_size) {
    if (u.phase == 0) {
      sparse_owner(p, u);
    } else {
      sparse_end(p, u);
    }
  } else {
    switch (u.phase) {
      case 0: sparse_to_owners(p, u); break;
      case 1: sparse_owner(p, u); break;
      case 2: sparse_from_owners(p, u); break;
      default: sparse_end(p, u); break;
    }
  }
}

// Rank `source`'s frame of this owner's shard.
template <class C, class F, class T>
host_span<const std::byte> allreduce_engine<C, F, T>::contribution(policies& p, const step_unit& u, int source) const
{
  const auto w = static_cast<std::size_t>(p.transport.size());
  const auto s = static_cast<std::size_t>(source);
  if (source == p.transport.rank()) {
    return host_span<const std::byte>(u.send.data() + u.offsets[s], static_cast<std::size_t>(u.sizes[w + s]));
  }
  const std::size_t* from = u.offsets.data() + w + 1;
  return host_span<const std::byte>(u.recv.data() + from[s], from[s + 1] - from[s]);
}

// Owner `owner`'s re-selected frame.
template <class C, class F, class T>
host_span<const std::byte> allreduce_engine<C, F, T>::reselected(policies& p, const step_unit& u, int owner) const
{
  const auto w = static_cast<std::size_t>(p.transport.size());
  const auto s = static_cast<std::size_t>(owner);
  if (owner == p.transport.rank()) {
    return host_span<const std::byte>(u.owner.data(), static_cast<std::size_t>(u.sizes[3 * w]));
  }
  const std::size_t* at = u.offsets.data() + 2 * (w + 1);
  return host_span<const std::byte>(u.gathered.data() + at[s], at[s + 1] - at[s]);
}

// At commit (the step succeeded on every rank): the owner's feedback keeps
// what its re-selection dropped. A rule with hold_back adds it after its
// commit (`committed`); for one without, it is folded in before: into the
// staged residual of a fused codec, or subtracted from what the rule is told
// was decoded, so that p - decoded + dropped is held back all the same.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::keep_reselection_error(policies& p, step_unit& u, bool committed)
{
  if constexpr (F::stateful && compresses && !self_reducing) {
    const block_range mine = block_of(u.count, p.transport.size(), p.transport.rank());
    const host_span<const float> dropped(u.packed.data(), mine.count);
    if constexpr (holds_back<F>) {
      if (committed) {
        p.feedback.hold_back(u.segment_id, mine.begin, dropped);
      }
    } else if (!committed) {
      if constexpr (stages_residual<F>) {
        if (u.fused) {
          const host_span<float> staged = p.feedback.staging(u.segment_id, u.count);
          for (std::size_t i = 0; i < mine.count; ++i) {
            staged[mine.begin + i] += dropped[i];
          }
          return;
        }
      }
      for (std::size_t i = 0; i < mine.count; ++i) {
        u.own_decoded[mine.begin + i] -= dropped[i];
      }
    }
  } else {
    (void)p, (void)u, (void)committed;
  }
}

}  // namespace terse::detail

#pragma once
// Out-of-line bodies of terse::allreduce (collective/allreduce.hpp).

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace terse {

namespace detail {
template <class T>
float as_float(T value)
{
  return static_cast<float>(value);
}
}  // namespace detail

template <class C, class F, class T, class S>
codec_context allreduce<C, F, T, S>::context(bucket_id id) const noexcept
{
  codec_context ctx;
  ctx.seed = config_.seed;
  ctx.step = exchanges_;
  ctx.bucket = id;
  ctx.rank = transport_->rank();
  ctx.world = transport_->size();
  return ctx;
}

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::check_finite_or_raise(host_span<const float> values)
{
  // Branch-free accumulation so the scan vectorises: x - x is 0 for every
  // finite x and NaN for NaN and Inf.
  float probe = 0.0f;
  for (float v : values) {
    probe += v - v;
  }
  TERSE_CHECK(probe == 0.0f, errc::non_finite,
              "the averaged values hold NaN or Inf (so some rank's input did); every rank raises this");
}

template <class C, class F, class T, class S>
template <memory_space Space>
void allreduce<C, F, T, S>::average_dense(span<float, Space> values)
{
  for (const bucket& b : shape_.buckets()) {
    transport_->allreduce(values.subspan(b.offset, b.count), reduce_op::average);
  }
  if constexpr (Space == memory_space::host) {
    if (config_.check_finite) {
      check_finite_or_raise(values);
    }
  }
}

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::average_compressed(host_span<float> values)
{
  if constexpr (requires { feedback_.begin_step(host_span<const float>(values), 1); }) {
    feedback_.begin_step(host_span<const float>(values), transport_->size());
  }
  if constexpr (
      requires { compressor_.density; } && requires { feedback_.adjusted_density(std::uint64_t{}, double{}); }) {
    compressor_.density =
        static_cast<decltype(compressor_.density)>(feedback_.adjusted_density(exchanges_, target_density_));
  }
  for (const bucket& b : shape_.buckets()) {
    dense_segments(values, b);
    for (const segment& seg : shape_.segments_of(b)) {
      if (!seg.compressed) {
        continue;
      }
      if constexpr (detail::flushes<F>) {
        if (feedback_.flush_due(exchanges_)) {
          flush_segment(values, seg);
          continue;
        }
      }
      compressed_segment(values, seg);
    }
  }
}

// The bucket's small tensors, packed into one buffer: one dense allreduce.
template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::dense_segments(host_span<float> values, const bucket& b)
{
  std::size_t total = 0;
  for (const segment& seg : shape_.segments_of(b)) {
    total += seg.compressed ? 0 : seg.count;
  }
  if (total == 0) {
    return;
  }
  dense_.resize(total);
  std::size_t at = 0;
  for (const segment& seg : shape_.segments_of(b)) {
    if (!seg.compressed) {
      std::copy_n(values.data() + seg.offset, seg.count, dense_.data() + at);
      at += seg.count;
    }
  }
  transport_->allreduce(host_span<float>(dense_), reduce_op::average);
  check_finite_or_raise(host_span<const float>(dense_));
  at = 0;
  for (const segment& seg : shape_.segments_of(b)) {
    if (!seg.compressed) {
      std::copy_n(dense_.data() + at, seg.count, values.data() + seg.offset);
      at += seg.count;
    }
  }
}

// A flush step: the compensated values go out dense and the feedback keeps
// nothing back (commit with decoded == compensated).
template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::flush_segment(host_span<float> values, const segment& seg)
{
  const host_span<float> own = values.subspan(seg.offset, seg.count);
  const host_span<const float> comp = feedback_.compensate(seg.id, host_span<const float>(own));
  dense_.assign(comp.begin(), comp.end());
  transport_->allreduce(host_span<float>(dense_), reduce_op::average);
  check_finite_or_raise(host_span<const float>(dense_));
  feedback_.commit(seg.id, comp, comp);
  std::copy(dense_.begin(), dense_.end(), own.begin());
}

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::compressed_segment(host_span<float> values, const segment& seg)
{
  const host_span<float> own = values.subspan(seg.offset, seg.count);
  const codec_context ctx = context(seg.id);
  constexpr bool fusable = concepts::residual_fusing_compressor<C> && detail::stages_residual<F> &&
                           C::aggregation_kind != aggregation::summable;
  host_span<const float> comp = own;
  if constexpr (!fusable) {
    comp = feedback_.compensate(seg.id, host_span<const float>(own));
  }
  if constexpr (concepts::self_reducing_compressor<C, T>) {
    // PowerSGD: its own two allreduces; the result is the averaged
    // low-rank approximation of the compensated values.
    if (comp.data() != own.data()) {
      std::copy(comp.begin(), comp.end(), own.begin());
    }
    compressor_.reduce(ctx, *transport_, own);
    feedback_.commit(seg.id, comp, host_span<const float>(own));
  } else if constexpr (C::aggregation_kind == aggregation::summable) {
    summable_path(own, seg.id, comp, ctx);
  } else if constexpr (C::aggregation_kind == aggregation::requantizable) {
    requantizable_path(own, seg.id, comp, fusable, ctx);
  } else {
    gather_path(own, seg.id, comp, fusable, ctx);
  }
}

// One allreduce of the encoded values, with one extra element that counts
// the ranks whose input was not finite.
template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::summable_path(host_span<float> values, bucket_id id, host_span<const float> comp,
                                          const codec_context& ctx)
{
  static_assert(concepts::summable_compressor<C>,
                "terse::allreduce: a summable codec needs wire_type, wire_count, encode_values and decode_values");
  using wire_t = typename C::wire_type;
  const std::size_t m = compressor_.wire_count(values.size());
  const std::size_t bytes = (m + 1) * sizeof(wire_t);
  send_.resize(bytes);
  recv_.resize(bytes);
  const host_span<wire_t> local(reinterpret_cast<wire_t*>(send_.data()), m + 1);
  const host_span<wire_t> summed(reinterpret_cast<wire_t*>(recv_.data()), m + 1);
  bool finite = true;
  try {
    compressor_.encode_values(ctx, comp, local.first(m));
  } catch (const error& e) {
    if (e.code() != errc::non_finite) {
      throw;
    }
    finite = false;
    std::fill(local.begin(), local.end(), wire_t(0.0f));
  }
  local[m] = wire_t(finite ? 0.0f : 1.0f);
  transport_->allreduce(host_span<const wire_t>(local), summed, reduce_op::average);
  if (detail::as_float(summed[m]) != 0.0f) {
    detail::raise_status(detail::frame_status::non_finite, "allreduce");
  }
  if constexpr (F::stateful) {
    own_decoded_.resize(values.size());
    compressor_.decode_values(ctx, host_span<const wire_t>(local.first(m)), host_span<float>(own_decoded_));
    feedback_.commit(id, comp, host_span<const float>(own_decoded_));
  }
  compressor_.decode_values(ctx, host_span<const wire_t>(summed.first(m)), values);
}

// Encodes values[offset, offset + count) (compensated, or fused with the
// residual) into `out`; a non-finite input marks `status` instead of throwing.
template <class C, class F, class T, class S>
std::size_t allreduce<C, F, T, S>::encode_into(host_span<float> values, bucket_id id, host_span<const float> comp,
                                               bool fused, const codec_context& ctx, std::size_t offset,
                                               std::size_t count, host_span<std::byte> out,
                                               detail::frame_status& status)
{
  try {
    if constexpr (concepts::residual_fusing_compressor<C> && detail::stages_residual<F>) {
      if (fused) {
        const std::size_t n = values.size();
        return compressor_.encode_residual(ctx, host_span<const float>(values.subspan(offset, count)),
                                           feedback_.error(id, n).subspan(offset, count),
                                           feedback_.staging(id, n).subspan(offset, count), out);
      }
    }
    return compressor_.encode(ctx, comp.subspan(offset, count), out);
  } catch (const error& e) {
    if (e.code() != errc::non_finite) {
      throw;
    }
    status = detail::frame_status::non_finite;
    return 0;
  }
}

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::commit(bucket_id id, host_span<const float> comp, bool fused,
                                   host_span<const float> own_decoded)
{
  if constexpr (detail::stages_residual<F>) {
    if (fused) {
      feedback_.commit_staged(id);
      return;
    }
  }
  feedback_.commit(id, comp, own_decoded);
}

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::requantizable_path(host_span<float> values, bucket_id id, host_span<const float> comp,
                                               bool fused, const codec_context& ctx)
{
  const int world = transport_->size();
  const int rank = transport_->rank();
  const std::size_t n = values.size();
  const auto shard = [&](int s) { return detail::block_of(n, world, s); };
  const auto shard_context = [&](int s, std::uint32_t phase) {
    codec_context c = ctx;
    c.offset = shard(s).begin;
    c.phase = phase;
    return c;
  };
  const auto frame_bytes = [&](int s) {
    return detail::frame_header_bytes + compressor_.max_encoded_bytes(shard(s).count);
  };
  const std::size_t block = frame_bytes(0);  // shard 0 is the largest
  send_.resize(block * static_cast<std::size_t>(world));
  recv_.resize(block * static_cast<std::size_t>(world));
  const auto frame_at = [block](std::vector<std::byte>& buffer, int s) {
    return host_span<std::byte>(buffer.data() + static_cast<std::size_t>(s) * block, block);
  };

  // 1. Encode one shard per destination (and, for feedback, decode our own
  //    contribution now: it does not depend on the exchange).
  detail::frame_status own_status = detail::frame_status::ok;
  for (int s = 0; s < world; ++s) {
    const host_span<std::byte> frame = frame_at(send_, s);
    const std::size_t length =
        encode_into(values, id, comp, fused, shard_context(s, 0), shard(s).begin, shard(s).count,
                    frame.subspan(detail::frame_header_bytes, block - detail::frame_header_bytes), own_status);
    detail::write_frame(frame.data(), detail::frame_status::ok, length);
  }
  if (own_status != detail::frame_status::ok) {
    for (int s = 0; s < world; ++s) {
      detail::write_frame(frame_at(send_, s).data(), own_status, 0);
    }
  } else if (F::stateful && !fused) {
    own_decoded_.assign(n, 0.0f);
    for (int s = 0; s < world; ++s) {
      const detail::frame_view f = detail::read_frame(host_span<const std::byte>(frame_at(send_, s)));
      compressor_.decode_add(shard_context(s, 0), f.payload,
                             host_span<float>(own_decoded_).subspan(shard(s).begin, shard(s).count));
    }
  }

  // 2. Scatter: shard s of every rank reaches rank s.
  detail::all_to_all(*transport_, host_span<const std::byte>(send_), host_span<std::byte>(recv_), block);

  // 3. The owner decodes its shard from every rank in rank order, averages
  //    and re-encodes it (phase 1: fresh draws).
  const detail::block_range mine = shard(rank);
  owner_sum_.assign(mine.count, 0.0f);
  detail::frame_status seen = own_status;
  for (int source = 0; source < world && seen == detail::frame_status::ok; ++source) {
    try {
      const detail::frame_view f = detail::read_frame(host_span<const std::byte>(frame_at(recv_, source)));
      seen = detail::worst(seen, f.status);
      if (f.status == detail::frame_status::ok) {
        compressor_.decode_add(shard_context(rank, 0), f.payload, host_span<float>(owner_sum_));
      }
    } catch (const error& e) {
      if (e.code() != errc::malformed_payload) {
        throw;
      }
      seen = detail::frame_status::malformed;
    }
  }
  const float inverse = 1.0f / static_cast<float>(world);
  for (float& v : owner_sum_) {
    v *= inverse;
  }
  owner_frame_.resize(frame_bytes(rank));
  std::size_t owner_length = 0;
  if (seen == detail::frame_status::ok) {
    try {
      owner_length = compressor_.encode(
          shard_context(rank, 1), host_span<const float>(owner_sum_),
          host_span<std::byte>(owner_frame_)
              .subspan(detail::frame_header_bytes, owner_frame_.size() - detail::frame_header_bytes));
    } catch (const error& e) {
      if (e.code() != errc::non_finite) {
        throw;
      }
      seen = detail::frame_status::non_finite;  // the sum overflowed
    }
  }
  detail::write_frame(owner_frame_.data(), seen, owner_length);

  // 4. Gather every owner's frame; every rank decodes the same bytes.
  counts_.resize(static_cast<std::size_t>(world));
  std::size_t total = 0;
  for (int s = 0; s < world; ++s) {
    counts_[static_cast<std::size_t>(s)] = frame_bytes(s);
    total += frame_bytes(s);
  }
  gathered_.resize(total);
  transport_->allgatherv(host_span<const std::byte>(owner_frame_), host_span<std::byte>(gathered_),
                         host_span<const std::size_t>(counts_));
  detail::frame_status status = detail::frame_status::ok;
  for (std::size_t at = 0, s = 0; s < counts_.size(); at += counts_[s], ++s) {
    status =
        detail::worst(status, detail::read_frame(host_span<const std::byte>(gathered_.data() + at, counts_[s])).status);
  }
  if (status != detail::frame_status::ok) {
    detail::raise_status(status, "allreduce");
  }
  std::fill(values.begin(), values.end(), 0.0f);
  std::size_t at = 0;
  for (int s = 0; s < world; ++s) {
    const detail::frame_view f =
        detail::read_frame(host_span<const std::byte>(gathered_.data() + at, counts_[static_cast<std::size_t>(s)]));
    compressor_.decode_add(shard_context(s, 1), f.payload, values.subspan(shard(s).begin, shard(s).count));
    at += counts_[static_cast<std::size_t>(s)];
  }
  commit(id, comp, fused, host_span<const float>(own_decoded_));
}

// Everyone's whole payload to everyone (sizes first: they may differ), then
// every rank decodes all of them in rank order.
template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::gather_path(host_span<float> values, bucket_id id, host_span<const float> comp, bool fused,
                                        const codec_context& ctx)
{
  const int world = transport_->size();
  const std::size_t n = values.size();
  send_.resize(detail::frame_header_bytes + compressor_.max_encoded_bytes(n));
  detail::frame_status own_status = detail::frame_status::ok;
  const std::size_t length = encode_into(
      values, id, comp, fused, ctx, 0, n,
      host_span<std::byte>(send_).subspan(detail::frame_header_bytes, send_.size() - detail::frame_header_bytes),
      own_status);
  detail::write_frame(send_.data(), own_status, length);
  const std::size_t own_bytes = detail::frame_header_bytes + length;
  if (own_status == detail::frame_status::ok && F::stateful && !fused) {
    own_decoded_.assign(n, 0.0f);
    compressor_.decode_add(ctx, host_span<const std::byte>(send_.data() + detail::frame_header_bytes, length),
                           host_span<float>(own_decoded_));
  }

  sizes_.resize(static_cast<std::size_t>(world));
  const std::uint64_t mine = own_bytes;
  transport_->allgather(host_span<const std::uint64_t>(&mine, 1), host_span<std::uint64_t>(sizes_));
  counts_.resize(static_cast<std::size_t>(world));
  std::size_t total = 0;
  for (std::size_t s = 0; s < counts_.size(); ++s) {
    counts_[s] = static_cast<std::size_t>(sizes_[s]);
    total += counts_[s];
  }
  gathered_.resize(total);
  transport_->allgatherv(host_span<const std::byte>(send_.data(), own_bytes), host_span<std::byte>(gathered_),
                         host_span<const std::size_t>(counts_));
  detail::frame_status status = detail::frame_status::ok;
  for (std::size_t at = 0, s = 0; s < counts_.size(); at += counts_[s], ++s) {
    status =
        detail::worst(status, detail::read_frame(host_span<const std::byte>(gathered_.data() + at, counts_[s])).status);
  }
  if (status != detail::frame_status::ok) {
    detail::raise_status(status, "allreduce");
  }
  // Every rank decodes the same bytes, so a malformed payload fails on all.
  std::fill(values.begin(), values.end(), 0.0f);
  for (std::size_t at = 0, s = 0; s < counts_.size(); at += counts_[s], ++s) {
    const detail::frame_view f = detail::read_frame(host_span<const std::byte>(gathered_.data() + at, counts_[s]));
    compressor_.decode_add(ctx, f.payload, values);
  }
  const float inverse = 1.0f / static_cast<float>(world);
  for (float& v : values) {
    v *= inverse;
  }
  commit(id, comp, fused, host_span<const float>(own_decoded_));
}

// --- state ---------------------------------------------------------------

namespace detail {
inline constexpr std::uint32_t allreduce_state_version = 1;

template <class C>
constexpr std::uint32_t codec_tag() noexcept
{
  if constexpr (requires { C::id; }) {
    return static_cast<std::uint32_t>(C::id);
  } else {
    return 0;
  }
}
}  // namespace detail

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::save(std::ostream& out) const
{
  state_writer w(out);
  w.section("terse::allreduce");
  w.value(detail::allreduce_state_version);
  w.value(static_cast<std::int32_t>(transport_->size()));
  w.value(static_cast<std::int32_t>(transport_->rank()));
  w.value(shape_.hash());
  w.value(detail::codec_tag<C>());
  w.value(exchanges_);
  w.value(gradient_calls_);
  w.value(parameter_calls_);
  if (device_state_) {  // the state lives on the device
    device_state_->save_policies(w);
  } else {
    if constexpr (detail::saves_state<F>) {
      feedback_.save(w);
    }
    if constexpr (detail::saves_state<C>) {
      compressor_.save(w);
    }
  }
  if constexpr (detail::saves_state<S>) {
    schedule_.save(w);
  }
}

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::load(std::istream& in)
{
  state_reader r(in);
  r.section("terse::allreduce");
  TERSE_CHECK(r.value<std::uint32_t>() == detail::allreduce_state_version, errc::io,
              "allreduce state has another version");
  const auto world = r.value<std::int32_t>();
  TERSE_CHECK(world == transport_->size(), errc::io,
              "allreduce state was saved by a world of " + std::to_string(world) + " ranks, not " +
                  std::to_string(transport_->size()));
  const auto rank = r.value<std::int32_t>();
  TERSE_CHECK(
      rank == transport_->rank(), errc::io,
      "allreduce state was saved by rank " + std::to_string(rank) + ", not " + std::to_string(transport_->rank()));
  TERSE_CHECK(r.value<std::uint64_t>() == shape_.hash(), errc::io, "allreduce state was saved for another layout");
  TERSE_CHECK(r.value<std::uint32_t>() == detail::codec_tag<C>(), errc::io,
              "allreduce state was saved for another codec");
  const auto exchanges = r.value<std::uint64_t>();
  const auto gradient_calls = r.value<std::uint64_t>();
  const auto parameter_calls = r.value<std::uint64_t>();
  if (device_state_) {
    device_state_->load_policies(r);
  } else {
    if constexpr (detail::saves_state<F>) {
      feedback_.load(r);
    }
    if constexpr (detail::saves_state<C>) {
      compressor_.load(r);
    }
  }
  if constexpr (detail::saves_state<S>) {
    schedule_.load(r);
  }
  exchanges_ = exchanges;
  gradient_calls_ = gradient_calls;
  parameter_calls_ = parameter_calls;
}

}  // namespace terse

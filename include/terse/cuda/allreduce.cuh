#pragma once
/// @file
/// (Over 400 lines, and a second copy of the host engine's paths: it is the
/// synchronous device path that a device backend of the engine is to
/// replace; see docs/architecture.md.)
///
/// The compressed allreduce on device buffers (include this in a
/// translation unit compiled by nvcc). The same three algorithms as the
/// host path (collective/detail/allreduce.inl), with the CUDA codecs of
/// terse/cuda/*.cuh, feedback state in device memory (cuda/feedback.cuh),
/// and a device transport: NCCL (stream-ordered), or MPI staging through
/// pinned host memory. Only frame headers (9 bytes each) and payload sizes
/// come back to the host, once per exchange phase.
///
/// @code
/// terse::allreduce<terse::compress::cast_bf16, terse::feedback::none, terse::nccl_transport> sync(nccl, shape);
/// sync.on_gradients(terse::device_span<float>(grads, n), stream);
/// @endcode

#include <terse/collective/allreduce.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/cuda/adaptive.cuh>
#include <terse/cuda/cast.cuh>
#include <terse/cuda/dgc.cuh>
#include <terse/cuda/feedback.cuh>
#include <terse/cuda/qsgd.cuh>
#include <terse/cuda/randomk.cuh>
#include <terse/cuda/sign.cuh>
#include <terse/cuda/terngrad.cuh>
#include <terse/cuda/threshold.cuh>
#include <terse/cuda/topk.cuh>
#include <terse/cuda/uniform.cuh>
#if defined(TERSE_WITH_BLAS)
#include <terse/cuda/powersgd.cuh>
#endif

#include <terse/cuda/detail/codec_dispatch.cuh>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <sstream>
#include <vector>

namespace terse::detail {

/// The transport at the bottom of a decorator stack.
template <class T>
auto& innermost_transport(T& t)
{
  if constexpr (requires { t.inner(); }) {
    return innermost_transport(t.inner());
  } else {
    return t;
  }
}

/// True when the transport enqueues on a CUDA stream (NCCL) instead of
/// staging through the host (MPI).
template <class T>
concept stream_ordered_transport = requires(T& t)
{
  innermost_transport(t).stream();
};

template <class C, class F, class T, class S>
struct device_path<allreduce<C, F, T, S>> {
  using allreduce_type = allreduce<C, F, T, S>;
  static_assert(has_device_feedback<F>,
                "terse::allreduce on device buffers: the feedback rule has no device twin; declare "
                "`Twin device_feedback_for(const Feedback&);` in its namespace (the terse::cuda feedback "
                "customization point, docs/extending.md)");
  // Fused only where the codec has a device encode_residual and the
  // feedback stages a residual.
  static constexpr bool fusable =
      C::aggregation_kind != aggregation::summable &&
      requires(C & c, const codec_context& ctx, device_span<const float> g, device_span<float> e,
               device_span<std::byte> out, cudaStream_t s, device_workspace& w, device_feedback<F>& d, bucket_id id)
  {
    device_codec::call_encode_residual(c, ctx, g, device_span<const float>(e), e, out, s, w);
    d.staging(id, std::size_t{}, s);
    d.commit_staged(id);
  };
#if defined(TERSE_WITH_BLAS)
  static constexpr bool self_reducing = requires(C & c)
  {
    cuda::powersgd_state(c);
  };
#else
  static constexpr bool self_reducing = false;
#endif

  /// Scratch and device-resident policy state, made on first use.
  struct state final : device_state_base {
    device_workspace workspace;
    device_feedback<F> feedback;
    device_buffer<std::byte> send, recv, gathered, owner_frame, wire_local, wire_summed;
    device_buffer<float> dense, owner_sum, own_decoded;
    device_buffer<std::uint64_t> sizes_device;
    pinned_buffer<std::byte> frames_host;
    pinned_buffer<std::uint64_t> sizes_host;
    std::vector<std::size_t> counts;
#if defined(TERSE_WITH_BLAS)
    std::unique_ptr<cuda::powersgd_state> powersgd;
#endif

    // The codec's own state stays in the host object (the collective saves
    // it); only PowerSGD keeps its warm-start Q here.
    bool save_policies(state_writer& out) const override
    {
      if constexpr (saves_state<F>) {
        feedback.save(out);
      }
#if defined(TERSE_WITH_BLAS)
      if constexpr (self_reducing && saves_state<C>) {
        powersgd->save(out);
        return true;
      }
#endif
      return false;
    }
    bool load_policies(state_reader& in) override
    {
      if constexpr (saves_state<F>) {
        feedback.load(in);
      }
#if defined(TERSE_WITH_BLAS)
      if constexpr (self_reducing && saves_state<C>) {
        powersgd->load(in);
        return true;
      }
#endif
      return false;
    }
  };

  static state& state_of(allreduce_type& a)
  {
    if (!a.device_state_) {
      auto fresh = std::make_unique<state>();
#if defined(TERSE_WITH_BLAS)
      if constexpr (self_reducing) {
        fresh->powersgd = std::make_unique<cuda::powersgd_state>(a.compressor_);
      }
#endif
      // Whatever the host policies hold (a restored checkpoint, say) moves
      // to the device once, through their common saved form.
      if constexpr (saves_state<F>) {
        std::stringstream blob;
        state_writer w(blob);
        a.feedback_.save(w);
        state_reader r(blob);
        fresh->feedback.load(r);
      }
      a.device_state_ = std::move(fresh);
    }
    return *static_cast<state*>(a.device_state_.get());
  }

  /// Binds the trainer's stream to the transport for one call and puts the
  /// transport's own stream back when the call ends, so the collective never
  /// changes the stream the transport uses for the trainer's later calls.
  struct stream_binding {
    using inner_type = std::remove_reference_t<decltype(innermost_transport(std::declval<T&>()))>;
    static constexpr bool rebinds = requires(inner_type & i)
    {
      i.stream();
      i.set_stream(cudaStream_t{});
    };

    stream_binding(allreduce_type& a, stream_ref requested) : inner(innermost_transport(*a.transport_))
    {
      if constexpr (rebinds) {
        previous = inner.stream();
        stream = requested.empty() ? previous : requested.template as<cudaStream_t>();
        inner.set_stream(stream);
      } else {
        stream = requested.empty() ? cudaStream_t{} : requested.template as<cudaStream_t>();
      }
    }
    stream_binding(const stream_binding&) = delete;
    stream_binding& operator=(const stream_binding&) = delete;
    ~stream_binding()
    {
      if constexpr (rebinds) {
        inner.set_stream(previous);
      }
    }

    inner_type& inner;
    cudaStream_t previous{};
    cudaStream_t stream{};
  };

  /// Waits for the stream (through the transport's deadline when it has one).
  static void wait(allreduce_type& a, cudaStream_t stream)
  {
    auto& inner = innermost_transport(*a.transport_);
    if constexpr (requires { inner.synchronize(); }) {
      inner.synchronize();
    } else {
      TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
    }
  }

  /// Host-staging transports copy with the legacy stream: finish ours first.
  static void before_verb(cudaStream_t stream)
  {
    if constexpr (!stream_ordered_transport<T>) {
      TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
    }
  }

  /// A schedule's monitoring state in device memory: the transport's
  /// allreduce on the trainer's stream.
  static void monitor(allreduce_type& a, device_span<double> values, reduce_op op, stream_ref stream_handle)
  {
    const stream_binding binding(a, stream_handle);
    before_verb(binding.stream);
    a.transport_->allreduce(values, op);
  }

  static void average(allreduce_type& a, device_span<float> values, stream_ref stream_handle)
  {
    const stream_binding binding(a, stream_handle);
    const cudaStream_t stream = binding.stream;
    state& st = state_of(a);
    if constexpr (requires { st.feedback.begin_step(a.feedback_, device_span<const float>(values), 1, stream); }) {
      st.feedback.begin_step(a.feedback_, device_span<const float>(values), a.transport_->size(), stream);
    }
    if constexpr (
        requires { a.compressor_.density; } && requires { a.feedback_.adjusted_density(std::uint64_t{}, double{}); }) {
      a.compressor_.density =
          static_cast<decltype(a.compressor_.density)>(a.feedback_.adjusted_density(a.exchanges_, a.target_density_));
    }
    for (const bucket& b : a.shape_.buckets()) {
      dense_segments(a, st, values, b, stream);
      for (const segment& seg : a.shape_.segments_of(b)) {
        if (!seg.compressed) {
          continue;
        }
        bool flush = a.sends_dense(seg.id);
        if constexpr (flushes<F>) {
          flush = flush || a.feedback_.flush_due(a.exchanges_);
        }
        if (flush) {
          flush_segment(a, st, values, seg, stream);
          continue;
        }
        compressed_segment(a, st, values, seg, stream);
      }
    }
  }

  static void dense_segments(allreduce_type& a, state& st, device_span<float> values, const bucket& b,
                             cudaStream_t stream)
  {
    std::size_t total = 0;
    for (const segment& seg : a.shape_.segments_of(b)) {
      total += seg.compressed ? 0 : seg.count;
    }
    if (total == 0) {
      return;
    }
    st.dense.reserve(total);
    std::size_t at = 0;
    for (const segment& seg : a.shape_.segments_of(b)) {
      if (!seg.compressed) {
        TERSE_CUDA_TRY(cudaMemcpyAsync(st.dense.data() + at, values.data() + seg.offset, seg.count * sizeof(float),
                                       cudaMemcpyDeviceToDevice, stream));
        at += seg.count;
      }
    }
    before_verb(stream);
    a.transport_->allreduce(st.dense.span(total), reduce_op::average);
    at = 0;
    for (const segment& seg : a.shape_.segments_of(b)) {
      if (!seg.compressed) {
        TERSE_CUDA_TRY(cudaMemcpyAsync(values.data() + seg.offset, st.dense.data() + at, seg.count * sizeof(float),
                                       cudaMemcpyDeviceToDevice, stream));
        at += seg.count;
      }
    }
  }

  static void flush_segment(allreduce_type& a, state& st, device_span<float> values, const segment& seg,
                            cudaStream_t stream)
  {
    const device_span<float> own = values.subspan(seg.offset, seg.count);
    const device_span<const float> comp =
        st.feedback.compensate(a.feedback_, seg.id, device_span<const float>(own), stream);
    st.dense.reserve(seg.count);
    TERSE_CUDA_TRY(
        cudaMemcpyAsync(st.dense.data(), comp.data(), seg.count * sizeof(float), cudaMemcpyDeviceToDevice, stream));
    before_verb(stream);
    a.transport_->allreduce(st.dense.span(seg.count), reduce_op::average);
    st.feedback.commit(seg.id, comp, comp, stream);
    TERSE_CUDA_TRY(
        cudaMemcpyAsync(own.data(), st.dense.data(), seg.count * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  }

  static codec_context context_of(const allreduce_type& a, bucket_id id)
  {
    return a.context(id);
  }

  static void compressed_segment(allreduce_type& a, state& st, device_span<float> values, const segment& seg,
                                 cudaStream_t stream)
  {
    const device_span<float> own = values.subspan(seg.offset, seg.count);
    codec_context ctx = context_of(a, seg.id);
    ctx.tensors = a.shape_.shapes_of(seg);
    device_span<const float> comp = own;
    if constexpr (!fusable) {
      comp = st.feedback.compensate(a.feedback_, seg.id, device_span<const float>(own), stream);
    }
    if constexpr (self_reducing) {
#if defined(TERSE_WITH_BLAS)
      if (comp.data() != own.data()) {
        TERSE_CUDA_TRY(cudaMemcpyAsync(own.data(), comp.data(), own.size_bytes(), cudaMemcpyDeviceToDevice, stream));
      }
      before_verb(stream);
      st.powersgd->reduce(ctx, *a.transport_, own, stream);
      st.feedback.commit(seg.id, comp, device_span<const float>(own), stream);
#endif
    } else if constexpr (C::aggregation_kind == aggregation::summable) {
      summable_path(a, st, own, seg.id, comp, ctx, stream);
    } else if constexpr (C::aggregation_kind == aggregation::requantizable) {
      requantizable_path(a, st, own, seg.id, comp, ctx, stream);
    } else {
      gather_path(a, st, own, seg.id, comp, ctx, stream);
    }
  }

  static void summable_path(allreduce_type& a, state& st, device_span<float> values, bucket_id id,
                            device_span<const float> comp, const codec_context& ctx, cudaStream_t stream)
  {
    using wire_t = typename C::wire_type;
    const std::size_t m = a.compressor_.wire_count(values.size());
    st.wire_local.reserve((m + 1) * sizeof(wire_t));
    st.wire_summed.reserve((m + 1) * sizeof(wire_t));
    const device_span<wire_t> local(reinterpret_cast<wire_t*>(st.wire_local.data()), m + 1);
    const device_span<wire_t> summed(reinterpret_cast<wire_t*>(st.wire_summed.data()), m + 1);
    bool finite = true;
    try {
      device_codec::call_encode_values(a.compressor_, ctx, comp, local.first(m), stream, st.workspace);
    } catch (const error& e) {
      if (e.code() != errc::non_finite) {
        throw;
      }
      finite = false;
      TERSE_CUDA_TRY(cudaMemsetAsync(local.data(), 0, local.size_bytes(), stream));
    }
    st.frames_host.reserve(sizeof(wire_t));
    auto* flag_host = reinterpret_cast<wire_t*>(st.frames_host.data());
    wait(a, stream);  // the pinned flag is free to write
    *flag_host = wire_t(finite ? 0.0f : 1.0f);
    TERSE_CUDA_TRY(cudaMemcpyAsync(local.data() + m, flag_host, sizeof(wire_t), cudaMemcpyHostToDevice, stream));
    before_verb(stream);
    a.transport_->allreduce(device_span<const wire_t>(local), summed, reduce_op::average);
    TERSE_CUDA_TRY(cudaMemcpyAsync(flag_host, summed.data() + m, sizeof(wire_t), cudaMemcpyDeviceToHost, stream));
    wait(a, stream);
    if (static_cast<float>(*flag_host) != 0.0f) {
      raise_status(frame_status::non_finite, "allreduce");
    }
    if constexpr (device_feedback<F>::stateful) {
      st.own_decoded.reserve(values.size());
      device_codec::call_decode_values(a.compressor_, ctx, device_span<const wire_t>(local.first(m)),
                                       st.own_decoded.span(values.size()), stream, st.workspace);
      st.feedback.commit(id, comp, device_span<const float>(st.own_decoded.span(values.size())), stream);
    }
    device_codec::call_decode_values(a.compressor_, ctx, device_span<const wire_t>(summed.first(m)), values, stream,
                                     st.workspace);
  }

  /// Encodes [offset, offset + count) of the segment (fused with the
  /// residual when it can); a non-finite input marks `status`.
  static std::size_t encode_into(allreduce_type& a, state& st, device_span<float> values, bucket_id id,
                                 device_span<const float> comp, const codec_context& ctx, std::size_t offset,
                                 std::size_t count, device_span<std::byte> out, frame_status& status,
                                 cudaStream_t stream)
  {
    try {
      if constexpr (fusable) {
        const std::size_t n = values.size();
        return device_codec::call_encode_residual(
            a.compressor_, ctx, device_span<const float>(values.subspan(offset, count)),
            st.feedback.error(id, n, stream).subspan(offset, count),
            st.feedback.staging(id, n, stream).subspan(offset, count), out, stream, st.workspace);
      } else {
        return device_codec::call_encode(a.compressor_, ctx, comp.subspan(offset, count), out, stream, st.workspace);
      }
    } catch (const error& e) {
      if (e.code() != errc::non_finite) {
        throw;
      }
      status = frame_status::non_finite;
      return 0;
    }
  }

  static void commit(state& st, bucket_id id, device_span<const float> comp, device_span<const float> own_decoded,
                     cudaStream_t stream)
  {
    if constexpr (fusable) {
      st.feedback.commit_staged(id);
    } else {
      st.feedback.commit(id, comp, own_decoded, stream);
    }
  }

  /// Writes a frame header (status, length) at `frame` (device memory)
  /// through pinned slot `slot` (kept until the next wait).
  static void put_frame(state& st, std::byte* frame, std::size_t slot, frame_status status, std::uint64_t length,
                        cudaStream_t stream)
  {
    std::byte* host = st.frames_host.data() + slot * frame_header_bytes;
    write_frame(host, status, length);
    TERSE_CUDA_TRY(cudaMemcpyAsync(frame, host, frame_header_bytes, cudaMemcpyHostToDevice, stream));
  }

  /// Copies the headers of `count` frames (device, `stride` apart, or at
  /// the given offsets) to pinned memory and returns their statuses read
  /// after a wait.
  static void fetch_frames(allreduce_type& a, state& st, const std::byte* base, const std::vector<std::size_t>& offsets,
                           cudaStream_t stream)
  {
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      TERSE_CUDA_TRY(cudaMemcpyAsync(st.frames_host.data() + i * frame_header_bytes, base + offsets[i],
                                     frame_header_bytes, cudaMemcpyDeviceToHost, stream));
    }
    wait(a, stream);
  }

  /// The frame header fetched into pinned slot `i`, checked against the
  /// room its frame has.
  static frame_view host_frame(state& st, std::size_t i, std::size_t room)
  {
    const std::byte* h = st.frames_host.data() + i * frame_header_bytes;
    const auto status = static_cast<std::uint8_t>(h[0]);
    TERSE_CHECK(status <= 2, errc::malformed_payload, "a collective frame has an unknown status");
    const auto length = wire::load<std::uint64_t>(h + 1);
    TERSE_CHECK(length <= room - frame_header_bytes, errc::malformed_payload, "a collective frame overflows its room");
    return frame_view{static_cast<frame_status>(status), host_span<const std::byte>(nullptr, length)};
  }

  static void requantizable_path(allreduce_type& a, state& st, device_span<float> values, bucket_id id,
                                 device_span<const float> comp, const codec_context& ctx, cudaStream_t stream)
  {
    const int world = a.transport_->size();
    const int rank = a.transport_->rank();
    const std::size_t n = values.size();
    const auto shard = [&](int s) { return block_of(n, world, s); };
    const auto shard_context = [&](int s, std::uint32_t phase) {
      codec_context c = ctx;
      c.offset = shard(s).begin;
      c.phase = phase;
      return c;
    };
    const auto frame_bytes = [&](int s) {
      return frame_header_bytes + a.compressor_.max_encoded_bytes(shard(s).count);
    };
    const std::size_t block = frame_bytes(0);
    const auto w = static_cast<std::size_t>(world);
    st.send.reserve(block * w);
    st.recv.reserve(block * w);
    st.frames_host.reserve(frame_header_bytes * w);
    const auto frame_at = [block](device_buffer<std::byte>& buffer, int s) {
      return device_span<std::byte>(buffer.data() + static_cast<std::size_t>(s) * block, block);
    };
    std::vector<std::size_t> offsets(w);
    for (std::size_t s = 0; s < w; ++s) {
      offsets[s] = s * block;
    }

    // 1. One shard per destination.
    wait(a, stream);  // pinned frame slots are free
    frame_status own_status = frame_status::ok;
    std::vector<std::uint64_t> lengths(w, 0);
    for (int s = 0; s < world; ++s) {
      lengths[static_cast<std::size_t>(s)] =
          encode_into(a, st, values, id, comp, shard_context(s, 0), shard(s).begin, shard(s).count,
                      frame_at(st.send, s).subspan(frame_header_bytes, block - frame_header_bytes), own_status, stream);
    }
    for (int s = 0; s < world; ++s) {
      put_frame(st, frame_at(st.send, s).data(), static_cast<std::size_t>(s), own_status,
                own_status == frame_status::ok ? lengths[static_cast<std::size_t>(s)] : 0, stream);
    }
    if (own_status == frame_status::ok && device_feedback<F>::stateful && !fusable) {
      st.own_decoded.reserve(n);
      TERSE_CUDA_TRY(cudaMemsetAsync(st.own_decoded.data(), 0, n * sizeof(float), stream));
      for (int s = 0; s < world; ++s) {
        const auto payload = device_span<const std::byte>(frame_at(st.send, s).data() + frame_header_bytes,
                                                          lengths[static_cast<std::size_t>(s)]);
        device_codec::call_decode_add(a.compressor_, shard_context(s, 0), payload,
                                      st.own_decoded.span(n).subspan(shard(s).begin, shard(s).count), stream,
                                      st.workspace);
      }
    }

    // 2. Scatter: shard s of every rank reaches rank s.
    before_verb(stream);
    TERSE_CUDA_TRY(cudaMemcpyAsync(frame_at(st.recv, rank).data(), frame_at(st.send, rank).data(), block,
                                   cudaMemcpyDeviceToDevice, stream));
    if constexpr (concepts::exchanging_transport<T, memory_space::device>) {
      // Every send and receive posted at once (one NCCL group).
      std::vector<outgoing<memory_space::device>> sends;
      std::vector<incoming<memory_space::device>> recvs;
      for (int r = 0; r < world; ++r) {
        if (r != rank) {
          sends.push_back({r, device_span<const std::byte>(frame_at(st.send, r))});
          recvs.push_back({r, frame_at(st.recv, r)});
        }
      }
      a.transport_->wait(a.transport_->start_exchange(host_span<const outgoing<memory_space::device>>(sends),
                                                      host_span<const incoming<memory_space::device>>(recvs),
                                                      collective_tag));
    } else {
      for (int d = 1; d < world; ++d) {
        const int dest = (rank + d) % world;
        const int source = (rank + world - d) % world;
        a.transport_->sendrecv(device_span<const std::byte>(frame_at(st.send, dest)), dest, frame_at(st.recv, source),
                               source, collective_tag);
      }
    }

    // 3. The owner decodes every rank's contribution to its shard in rank
    //    order, averages and re-encodes it.
    fetch_frames(a, st, st.recv.data(), offsets, stream);
    const block_range mine = shard(rank);
    st.owner_sum.reserve(mine.count);
    TERSE_CUDA_TRY(cudaMemsetAsync(st.owner_sum.data(), 0, mine.count * sizeof(float), stream));
    frame_status seen = own_status;
    for (int source = 0; source < world && seen == frame_status::ok; ++source) {
      try {
        const frame_view f = host_frame(st, static_cast<std::size_t>(source), block);
        seen = worst(seen, f.status);
        if (f.status == frame_status::ok) {
          device_codec::call_decode_add(
              a.compressor_, shard_context(rank, 0),
              device_span<const std::byte>(frame_at(st.recv, source).data() + frame_header_bytes, f.payload.size()),
              st.owner_sum.span(mine.count), stream, st.workspace);
        }
      } catch (const error& e) {
        if (e.code() != errc::malformed_payload) {
          throw;
        }
        seen = frame_status::malformed;
      }
    }
    launch_feedback_kernel(feedback_scale_kernel<>, mine.count, stream, st.owner_sum.data(),
                           1.0f / static_cast<float>(world), std::uint64_t{mine.count});
    const std::size_t owner_bytes = frame_bytes(rank);
    st.owner_frame.reserve(owner_bytes);
    std::size_t owner_length = 0;
    if (seen == frame_status::ok) {
      try {
        owner_length = device_codec::call_encode(
            a.compressor_, shard_context(rank, 1), device_span<const float>(st.owner_sum.span(mine.count)),
            device_span<std::byte>(st.owner_frame.data() + frame_header_bytes, owner_bytes - frame_header_bytes),
            stream, st.workspace);
      } catch (const error& e) {
        if (e.code() != errc::non_finite) {
          throw;
        }
        seen = frame_status::non_finite;
      }
    }
    wait(a, stream);
    put_frame(st, st.owner_frame.data(), 0, seen, owner_length, stream);

    // 4. Every owner's frame to every rank; all decode the same bytes.
    st.counts.resize(w);
    std::size_t total = 0;
    std::vector<std::size_t> gathered_offsets(w);
    for (std::size_t s = 0; s < w; ++s) {
      st.counts[s] = frame_bytes(static_cast<int>(s));
      gathered_offsets[s] = total;
      total += st.counts[s];
    }
    st.gathered.reserve(total);
    before_verb(stream);
    a.transport_->allgatherv(device_span<const std::byte>(st.owner_frame.data(), owner_bytes), st.gathered.span(total),
                             host_span<const std::size_t>(st.counts));
    fetch_frames(a, st, st.gathered.data(), gathered_offsets, stream);
    frame_status status = frame_status::ok;
    std::vector<std::uint64_t> owner_lengths(w);
    for (std::size_t s = 0; s < w; ++s) {
      const frame_view f = host_frame(st, s, st.counts[s]);
      status = worst(status, f.status);
      owner_lengths[s] = f.payload.size();
    }
    if (status != frame_status::ok) {
      raise_status(status, "allreduce");
    }
    TERSE_CUDA_TRY(cudaMemsetAsync(values.data(), 0, values.size_bytes(), stream));
    for (int s = 0; s < world; ++s) {
      const auto i = static_cast<std::size_t>(s);
      device_codec::call_decode_add(
          a.compressor_, shard_context(s, 1),
          device_span<const std::byte>(st.gathered.data() + gathered_offsets[i] + frame_header_bytes, owner_lengths[i]),
          values.subspan(shard(s).begin, shard(s).count), stream, st.workspace);
    }
    commit(st, id, comp, device_span<const float>(st.own_decoded.span(n)), stream);
  }

  static void gather_path(allreduce_type& a, state& st, device_span<float> values, bucket_id id,
                          device_span<const float> comp, const codec_context& ctx, cudaStream_t stream)
  {
    const int world = a.transport_->size();
    const auto w = static_cast<std::size_t>(world);
    const std::size_t n = values.size();
    const std::size_t room = frame_header_bytes + a.compressor_.max_encoded_bytes(n);
    st.send.reserve(room);
    st.frames_host.reserve(frame_header_bytes * std::max<std::size_t>(w, 1));
    wait(a, stream);
    frame_status own_status = frame_status::ok;
    const std::size_t length = encode_into(
        a, st, values, id, comp, ctx, 0, n,
        device_span<std::byte>(st.send.data() + frame_header_bytes, room - frame_header_bytes), own_status, stream);
    put_frame(st, st.send.data(), 0, own_status, length, stream);
    const std::size_t own_bytes = frame_header_bytes + length;
    if (own_status == frame_status::ok && device_feedback<F>::stateful && !fusable) {
      st.own_decoded.reserve(n);
      TERSE_CUDA_TRY(cudaMemsetAsync(st.own_decoded.data(), 0, n * sizeof(float), stream));
      device_codec::call_decode_add(a.compressor_, ctx,
                                    device_span<const std::byte>(st.send.data() + frame_header_bytes, length),
                                    st.own_decoded.span(n), stream, st.workspace);
    }

    // Sizes first (payloads differ), through device memory for NCCL.
    st.sizes_device.reserve(w + 1);
    st.sizes_host.reserve(w + 1);
    st.sizes_host.data()[w] = own_bytes;
    TERSE_CUDA_TRY(cudaMemcpyAsync(st.sizes_device.data() + w, st.sizes_host.data() + w, sizeof(std::uint64_t),
                                   cudaMemcpyHostToDevice, stream));
    before_verb(stream);
    a.transport_->allgather(device_span<const std::uint64_t>(st.sizes_device.data() + w, 1), st.sizes_device.span(w));
    TERSE_CUDA_TRY(cudaMemcpyAsync(st.sizes_host.data(), st.sizes_device.data(), w * sizeof(std::uint64_t),
                                   cudaMemcpyDeviceToHost, stream));
    wait(a, stream);
    st.counts.resize(w);
    std::size_t total = 0;
    std::vector<std::size_t> offsets(w);
    for (std::size_t s = 0; s < w; ++s) {
      st.counts[s] = static_cast<std::size_t>(st.sizes_host.data()[s]);
      TERSE_CHECK(st.counts[s] >= frame_header_bytes && st.counts[s] <= room, errc::malformed_payload,
                  "a rank announced a payload larger than its codec allows");
      offsets[s] = total;
      total += st.counts[s];
    }
    st.gathered.reserve(total);
    before_verb(stream);
    a.transport_->allgatherv(device_span<const std::byte>(st.send.data(), own_bytes), st.gathered.span(total),
                             host_span<const std::size_t>(st.counts));
    fetch_frames(a, st, st.gathered.data(), offsets, stream);
    frame_status status = frame_status::ok;
    std::vector<std::uint64_t> lengths(w);
    for (std::size_t s = 0; s < w; ++s) {
      const frame_view f = host_frame(st, s, st.counts[s]);
      status = worst(status, f.status);
      lengths[s] = f.payload.size();
    }
    if (status != frame_status::ok) {
      raise_status(status, "allreduce");
    }
    TERSE_CUDA_TRY(cudaMemsetAsync(values.data(), 0, values.size_bytes(), stream));
    for (std::size_t s = 0; s < w; ++s) {
      device_codec::call_decode_add(
          a.compressor_, ctx,
          device_span<const std::byte>(st.gathered.data() + offsets[s] + frame_header_bytes, lengths[s]), values,
          stream, st.workspace);
    }
    launch_feedback_kernel(feedback_scale_kernel<>, n, stream, values.data(), 1.0f / static_cast<float>(world),
                           std::uint64_t{n});
    commit(st, id, comp, device_span<const float>(st.own_decoded.span(n)), stream);
  }
};

}  // namespace terse::detail

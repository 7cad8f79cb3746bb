#pragma once
/// @file
/// `terse::nccl_transport`: the transport verbs on device memory over an NCCL
/// (Over 400 lines: one short body per verb, as in local.hpp.)
/// communicator, one GPU per rank. Verbs are stream-ordered: they enqueue on
/// the transport's `cudaStream_t` and return; `synchronize()` waits for the
/// stream with the options' deadline, so a dead peer is a timeout, not a
/// hang. Needs the terse::nccl target.
///
/// @code
/// ncclUniqueId id;                      // rank 0: ncclGetUniqueId(&id), then share it
/// auto t = terse::nccl_transport::create(rank, world, id, stream);
/// t.allreduce(terse::on_device(grad, n), terse::reduce_op::average);
/// t.synchronize();                      // or keep enqueuing work on `stream`
/// @endcode

#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/nccl_error.hpp>
#include <terse/core/span.hpp>
#include <terse/core/verbs.hpp>
#include <terse/transport/detail/call_descriptor.hpp>
#include <terse/transport/detail/nccl_exchange.hpp>
#include <terse/transport/detail/nccl_fingerprint.hpp>
#include <terse/transport/detail/nccl_guards.hpp>
#include <terse/transport/detail/nccl_types.hpp>
#include <terse/transport/detail/nccl_wait.hpp>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>

namespace terse {

/// The transport verbs over NCCL, on device spans and one CUDA stream.
///
/// - Element type and memory space come from the output span; every verb
///   takes device spans only (a host span is a compile error saying so).
/// - Verbs enqueue and return. `barrier()` and checked mode wait (see below).
/// - Failure: `synchronize()` (and every wait inside the transport) polls
///   the stream and `ncclCommGetAsyncError` until `options().timeout`. On
///   expiry it throws errc::timeout; an asynchronous NCCL error throws
///   errc::peer_failed (a remote or system failure) or errc::nccl. Either
///   way the transport is then broken: `healthy()` is false and every verb
///   throws errc::peer_failed at once. A communicator the transport owns
///   (made by `create`) is aborted with ncclCommAbort so stuck kernels exit;
///   one passed in by the caller is left to its owner to abort.
/// - The deadline counts from the call, and the stream first finishes what
///   was enqueued before it: set `timeout` above the longest work you queue
///   ahead of a wait.
/// - Checked mode (`options().checked`): before moving data the ranks
///   compare a 64-bit fingerprint of the call (verb, element type, counts,
///   operator, root, and whether this rank's arguments were valid) with a
///   two-word ncclMax allreduce, and wait for it with the deadline. A
///   difference throws errc::mismatch on every rank (errc::invalid_argument
///   on a rank whose own arguments are wrong) and the transport stays
///   healthy. Point-to-point verbs compare with their peers only; a
///   `sendrecv` must then be matched by `sendrecv` on its peers.
/// - `send`/`recv` tags must be non-negative but do not route messages: NCCL
///   delivers the messages between two ranks in the order they were posted.
///
/// Not thread-safe: use one transport from one host thread at a time. The
/// caller's current CUDA device should be the communicator's.
class nccl_transport {
 public:
  /// Device memory only.
  template <memory_space S>
  static constexpr bool accepts_memory = S == memory_space::device;

  /// Wraps a communicator the caller made and keeps owning. Make it
  /// non-blocking (ncclConfig_t::blocking = 0) for the deadline to cover
  /// everything: a blocking one can wait inside NCCL itself. After a timeout
  /// or peer failure the caller should ncclCommAbort it: this transport
  /// does not.
  nccl_transport(ncclComm_t comm, cudaStream_t stream, transport_options options = {})
      : nccl_transport(comm, stream, options, false)
  {
  }

  /// Makes and owns a non-blocking communicator for `rank` of `size` on the
  /// calling thread's current CUDA device, so the initialisation itself
  /// honours `options.timeout`. Every rank passes the same `id` (from
  /// ncclGetUniqueId on one rank).
  static nccl_transport create(int rank, int size, const ncclUniqueId& id, cudaStream_t stream,
                               transport_options options = {});

  nccl_transport(const nccl_transport&) = delete;
  nccl_transport& operator=(const nccl_transport&) = delete;
  nccl_transport(nccl_transport&& other) noexcept
      : comm_(std::exchange(other.comm_, nullptr)),
        stream_(other.stream_),
        options_(other.options_),
        rank_(other.rank_),
        size_(other.size_),
        owns_(std::exchange(other.owns_, false)),
        broken_(std::exchange(other.broken_, true)),
        scratch_(std::move(other.scratch_)),
        staging_(std::move(other.staging_)),
        exchanges_(std::move(other.exchanges_))
  {
  }
  nccl_transport& operator=(nccl_transport&& other) noexcept
  {
    if (this != &other) {
      release();
      comm_ = std::exchange(other.comm_, nullptr);
      stream_ = other.stream_;
      options_ = other.options_;
      rank_ = other.rank_;
      size_ = other.size_;
      owns_ = std::exchange(other.owns_, false);
      broken_ = std::exchange(other.broken_, true);
      scratch_ = std::move(other.scratch_);
      staging_ = std::move(other.staging_);
      exchanges_ = std::move(other.exchanges_);
    }
    return *this;
  }
  /// An owned communicator is finalized (waiting at most the timeout) and
  /// destroyed, or aborted if that fails or the transport is broken.
  ~nccl_transport() { release(); }

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  const transport_options& options() const noexcept { return options_; }
  /// False after a timeout or a peer failure; every verb then throws.
  bool healthy() const noexcept { return !broken_ && comm_ != nullptr; }

  /// The communicator (null once an owned one was aborted).
  ncclComm_t comm() const noexcept { return comm_; }
  cudaStream_t stream() const noexcept { return stream_; }
  /// Later verbs enqueue on `stream`; work already enqueued stays where it is.
  void set_stream(cudaStream_t stream) noexcept { stream_ = stream; }

  /// Waits until everything enqueued on the stream has finished, or throws
  /// errc::timeout after options().timeout (and breaks the transport).
  void synchronize();

  // --- collectives -------------------------------------------------------------

  /// `out` = op over ranks of `in`; `in` may be `out`.
  template <reducible T, memory_space S>
  void allreduce(std::type_identity_t<span<const T, S>> in, span<T, S> out, reduce_op op)
  {
    device_only<S>();
    std::string problem = reduce_problem<T>(op);
    if (in.size() != out.size()) {
      problem = "allreduce needs in.size() == out.size() (" + std::to_string(in.size()) +
                " != " + std::to_string(out.size()) + ")";
    } else if (overlap(in, out) && static_cast<const void*>(in.data()) != static_cast<const void*>(out.data())) {
      problem = "allreduce input and output overlap without being the same buffer";
    }
    agree("allreduce", describe_call<T>(verb::allreduce, out.size(), op), problem);
    submit("allreduce", [&] {
      TERSE_NCCL_TRY(
          ncclAllReduce(in.data(), out.data(), out.size(), nccl_type<T>(), detail::nccl::to_nccl(op), comm_, stream_));
    });
  }

  /// In-place allreduce.
  template <reducible T, memory_space S>
  void allreduce(span<T, S> buffer, reduce_op op)
  {
    allreduce<T, S>(buffer, buffer, op);
  }

  /// `out` = op over ranks of block rank() of `in` (blocks of out.size());
  /// `out` may be this rank's block of `in`.
  template <reducible T, memory_space S>
  void reduce_scatter(std::type_identity_t<span<const T, S>> in, span<T, S> out, reduce_op op)
  {
    device_only<S>();
    std::string problem = reduce_problem<T>(op);
    const std::size_t block = out.size();
    if (in.size() != block * static_cast<std::size_t>(size_)) {
      problem = "reduce_scatter needs in.size() == size() * out.size() (" + std::to_string(in.size()) +
                " != " + std::to_string(size_) + " * " + std::to_string(block) + ")";
    } else if (overlap(in, out) && out.data() != in.data() + block * static_cast<std::size_t>(rank_)) {
      problem = "reduce_scatter output may only alias this rank's own block of the input";
    }
    agree("reduce_scatter", describe_call<T>(verb::reduce_scatter, block, op), problem);
    submit("reduce_scatter", [&] {
      TERSE_NCCL_TRY(
          ncclReduceScatter(in.data(), out.data(), block, nccl_type<T>(), detail::nccl::to_nccl(op), comm_, stream_));
    });
  }

  /// Block r of `out` = rank r's `in`; `in` may be this rank's block of `out`.
  template <transportable T, memory_space S>
  void allgather(std::type_identity_t<span<const T, S>> in, span<T, S> out)
  {
    device_only<S>();
    std::string problem;
    const std::size_t block = in.size();
    if (out.size() != block * static_cast<std::size_t>(size_)) {
      problem = "allgather needs out.size() == size() * in.size() (" + std::to_string(out.size()) +
                " != " + std::to_string(size_) + " * " + std::to_string(block) + ")";
    } else if (overlap(in, out) && in.data() != out.data() + block * static_cast<std::size_t>(rank_)) {
      problem = "allgather input may only alias this rank's own block of the output";
    }
    agree("allgather", describe_call<T>(verb::allgather, block, reduce_op::sum), problem);
    submit("allgather",
           [&] { TERSE_NCCL_TRY(ncclAllGather(in.data(), out.data(), block, nccl_type<T>(), comm_, stream_)); });
  }

  /// Rank r's `in` lands at offset sum(counts[0..r)) of `out`; `in` may be
  /// this rank's slice of `out`. One grouped ncclBroadcast per rank.
  template <transportable T, memory_space S>
  void allgatherv(std::type_identity_t<span<const T, S>> in, span<T, S> out, host_span<const std::size_t> counts)
  {
    device_only<S>();
    std::string problem;
    std::size_t own_offset = 0;
    if (counts.size() != static_cast<std::size_t>(size_)) {
      problem = "allgatherv needs one count per rank (" + std::to_string(counts.size()) + " given for " +
                std::to_string(size_) + " ranks)";
    } else if (counts[static_cast<std::size_t>(rank_)] != in.size()) {
      problem = "allgatherv: counts[rank()] = " + std::to_string(counts[static_cast<std::size_t>(rank_)]) +
                " but in.size() = " + std::to_string(in.size());
    } else if (std::accumulate(counts.begin(), counts.end(), std::size_t{0}) != out.size()) {
      problem = "allgatherv needs out.size() == sum(counts)";
    } else {
      own_offset = std::accumulate(counts.begin(), counts.begin() + rank_, std::size_t{0});
      if (overlap(in, out) && in.data() != out.data() + own_offset) {
        problem = "allgatherv input may only alias this rank's own slice of the output";
      }
    }
    auto call = describe_call<T>(verb::allgatherv, in.size(), reduce_op::sum);
    call.counts_hash = detail::hash_counts(counts.as_std());
    agree("allgatherv", call, problem);
    submit("allgatherv", [&] {
      detail::nccl::group_guard group;
      std::size_t offset = 0;
      for (int r = 0; r < size_; ++r) {
        const std::size_t count = counts[static_cast<std::size_t>(r)];
        T* slice = out.data() + offset;
        const T* source = r == rank_ ? in.data() : slice;
        if (count != 0) {
          TERSE_NCCL_TRY(ncclBroadcast(source, slice, count, nccl_type<T>(), r, comm_, stream_));
        }
        offset += count;
      }
      group.end();
    });
  }

  /// Every rank's `buffer` becomes root's.
  template <transportable T, memory_space S>
  void broadcast(span<T, S> buffer, int root)
  {
    device_only<S>();
    std::string problem;
    if (root < 0 || root >= size_) {
      problem = "broadcast root " + std::to_string(root) + " is not a rank of a world of " + std::to_string(size_);
    }
    auto call = describe_call<T>(verb::broadcast, buffer.size(), reduce_op::sum);
    call.root = root;
    agree("broadcast", call, problem);
    submit("broadcast", [&] {
      TERSE_NCCL_TRY(ncclBroadcast(buffer.data(), buffer.data(), buffer.size(), nccl_type<T>(), root, comm_, stream_));
    });
  }

  /// Blocks until every rank has reached its barrier (or the deadline):
  /// unlike the other verbs it also waits for the work before it on the
  /// stream.
  void barrier();

  // --- point to point ----------------------------------------------------------

  /// Sends `buffer` to `peer`; NCCL may wait for the matching recv.
  template <transportable T, memory_space S>
  void send(span<T, S> buffer, int peer, int tag)
  {
    device_only<S>();
    check_peer("send", peer);
    std::string problem = tag_problem(tag);
    if (peer == rank_) {
      problem = "send to oneself would wait forever: use sendrecv(buffer, rank(), out, rank(), tag)";
    }
    agree_with_peers("send", message<T>(rank_, peer, buffer.size(), tag), peer, 0, -1, problem);
    submit("send", [&] {
      detail::nccl::group_guard group;
      TERSE_NCCL_TRY(ncclSend(buffer.data(), buffer.size(), nccl_type<T>(), peer, comm_, stream_));
      group.end();
    });
  }

  /// Receives exactly buffer.size() elements from `peer`.
  template <transportable T, memory_space S>
  void recv(span<T, S> buffer, int peer, int tag)
  {
    static_assert(!std::is_const_v<T>, "recv needs a writable span");
    device_only<S>();
    check_peer("recv", peer);
    std::string problem = tag_problem(tag);
    if (peer == rank_) {
      problem = "recv from oneself would wait forever: use sendrecv(buffer, rank(), out, rank(), tag)";
    }
    agree_with_peers("recv", 0, -1, message<T>(peer, rank_, buffer.size(), tag), peer, problem);
    submit("recv", [&] {
      detail::nccl::group_guard group;
      TERSE_NCCL_TRY(ncclRecv(buffer.data(), buffer.size(), nccl_type<T>(), peer, comm_, stream_));
      group.end();
    });
  }

  /// Sends to `dest` and receives from `source` in one NCCL group, so a ring
  /// exchange cannot deadlock. `dest` and `source` may be this rank.
  template <transportable T, memory_space S>
  void sendrecv(std::type_identity_t<span<const T, S>> send_buffer, int dest, span<T, S> recv_buffer, int source,
                int tag)
  {
    device_only<S>();
    check_peer("sendrecv", dest);
    check_peer("sendrecv", source);
    std::string problem = tag_problem(tag);
    if (overlap(send_buffer, recv_buffer)) {
      problem = "sendrecv buffers must not overlap";
    }
    agree_with_peers("sendrecv", message<T>(rank_, dest, send_buffer.size(), tag), dest,
                     message<T>(source, rank_, recv_buffer.size(), tag), source, problem);
    submit("sendrecv", [&] {
      detail::nccl::group_guard group;
      TERSE_NCCL_TRY(ncclSend(send_buffer.data(), send_buffer.size(), nccl_type<T>(), dest, comm_, stream_));
      TERSE_NCCL_TRY(ncclRecv(recv_buffer.data(), recv_buffer.size(), nccl_type<T>(), source, comm_, stream_));
      group.end();
    });
  }

  // --- grouped exchange (core/exchange.hpp) --------------------------------------

  /// Enqueues every message in one NCCL group (ncclSend / ncclRecv of
  /// bytes on the stream; a message to or from this rank itself is valid)
  /// and records an event after it. Empty messages move nothing. NCCL has
  /// no tags and matches the messages between two ranks in posting order,
  /// so every rank must start its exchanges in the same order, and NCCL
  /// cannot see a size mismatch (the peers' sizes must agree).
  exchange_id start_exchange(host_span<const outgoing<memory_space::device>> sends,
                             host_span<const incoming<memory_space::device>> recvs, int tag);
  /// Queries the exchange's event (and NCCL's asynchronous error) without
  /// blocking; true once the group has finished on the stream.
  bool test(exchange_id id);
  /// Polls `id` until it completes or its deadline passes (the stream
  /// first finishes what was enqueued before it, as in synchronize()).
  void wait(exchange_id id);

  // --- sub-transports --------------------------------------------------------------

  /// Collective over this transport (every rank calls it, within
  /// options().timeout). Ranks passing the same colour (>= 0) form one
  /// sub-transport, ranked by (key, parent rank), through ncclCommSplit; a
  /// negative colour gives a transport of this rank alone (size 1): the
  /// rank takes part in the split with NCCL_SPLIT_NOCOLOR (which gives no
  /// communicator) and then makes a one-rank communicator of its own
  /// (ncclGetUniqueId + ncclCommInitRankConfig). The sub-transport owns its
  /// non-blocking communicator, on this transport's device and stream, with
  /// its options. Checked mode first compares the call across ranks (a
  /// split against another verb is errc::mismatch); the split is then
  /// polled against the deadline (errc::timeout breaks this transport; the
  /// half-made communicator is left to NCCL). A communicator passed in
  /// blocking may block inside ncclCommSplit, as in its other calls. Needs
  /// NCCL 2.18 (errc::unsupported before).
  nccl_transport split(int colour, int key);
  /// The ranks that share this rank's host, ranked by their rank here:
  /// NCCL has no split by host, so the ranks allgather their host names
  /// (gethostname) on the device and split by the lowest rank of each name.
  nccl_transport split_shared();

 private:
  // Slots of the checked-mode scratch: a collective uses [0, 2); a
  // point-to-point call sends [0] and [1] and receives into [2] and [3].
  static constexpr std::size_t scratch_words = 4;

  nccl_transport(ncclComm_t comm, cudaStream_t stream, transport_options options, bool owns);

  template <memory_space S>
  static constexpr void device_only()
  {
    static_assert(S == memory_space::device,
                  "nccl_transport moves device memory only: pass terse::device_span (terse::on_device(ptr, n)); "
                  "for host buffers use local_transport or mpi_transport");
  }

  template <class T>
  static constexpr ncclDataType_t nccl_type() noexcept
  {
    return detail::nccl::to_nccl(data_type_v<T>);
  }

  template <class T>
  static std::string reduce_problem(reduce_op op)
  {
    if (!detail::nccl::supports<T>(op)) {
      return "average is defined for floating-point types only";
    }
    return {};
  }

  static std::string tag_problem(int tag)
  {
    return tag < 0 ? "tags are non-negative (got " + std::to_string(tag) + ")" : std::string();
  }

  template <class T>
  static detail::call_descriptor describe_call(verb what, std::size_t count, reduce_op op)
  {
    detail::call_descriptor call;
    call.what = what;
    call.type = data_type_v<std::remove_const_t<T>>;
    call.op = op;
    call.count = count;
    return call;
  }

  /// Fingerprint of one message from `from` to `to`; sender and receiver
  /// compute the same value when they agree on it.
  template <class T>
  static std::uint64_t message(int from, int to, std::size_t count, int tag) noexcept
  {
    return detail::nccl::fingerprint()
        .add(static_cast<std::uint64_t>(verb::send))
        .add(static_cast<std::uint64_t>(data_type_v<std::remove_const_t<T>>))
        .add(static_cast<std::uint64_t>(from))
        .add(static_cast<std::uint64_t>(to))
        .add(count)
        .add(static_cast<std::uint64_t>(tag))
        .value();
  }

  static std::uint64_t with_validity(std::uint64_t fingerprint, bool valid) noexcept
  {
    return detail::nccl::fingerprint().add(fingerprint).add(valid ? 1 : 0).value();
  }

  template <class A, class B>
  static bool overlap(span<A, memory_space::device> a, span<B, memory_space::device> b) noexcept
  {
    const auto* a0 = reinterpret_cast<const std::byte*>(a.data());
    const auto* b0 = reinterpret_cast<const std::byte*>(b.data());
    return a.size() != 0 && b.size() != 0 && a0 < b0 + b.size_bytes() && b0 < a0 + a.size_bytes();
  }
  template <class A, class B, memory_space S>
  static bool overlap(span<A, S>, span<B, S>) noexcept
  {
    return false;  // host spans never get past device_only(); this keeps its message the only one
  }

  void check_peer(const char* name, int peer) const;

  void ensure_healthy(const char* name) const;

  /// Checked mode: every rank learns whether all made the same call with
  /// valid arguments. ncclMax over {fp, ~fp} gives {max fp, ~min fp}, equal
  /// to {fp, ~fp} exactly when every rank's fp is this one.
  void agree(const char* name, detail::call_descriptor call, const std::string& problem);

  /// Checked mode for point-to-point calls: this rank and each peer swap
  /// the fingerprint of every message between them. `out` is the message to
  /// `dest`, `in` the one from `source`; a peer of -1 means none.
  void agree_with_peers(const char* name, std::uint64_t out, int dest, std::uint64_t in, int source,
                        const std::string& problem);

  /// Runs `enqueue` (NCCL and CUDA calls on the stream) and waits until a
  /// non-blocking communicator has taken the work. A failure here leaves
  /// the ranks out of step, so it breaks the transport.
  template <class Enqueue>
  void submit(const char* name, Enqueue&& enqueue);

  void check_async_error();

  /// Marks the transport broken (aborting an owned communicator so its
  /// kernels exit) and throws `code`.
  [[noreturn]] void break_down(errc code, const std::string& message);

  void break_quietly() noexcept;

  /// The split itself: `colour` (NCCL_SPLIT_NOCOLOR for a rank alone).
  nccl_transport split_communicator(int colour, int key);

  void release() noexcept;

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  transport_options options_;
  int rank_ = 0;
  int size_ = 0;
  bool owns_ = false;
  bool broken_ = false;
  device_buffer<std::uint64_t> scratch_;     ///< checked-mode fingerprints and the barrier word
  pinned_buffer<std::uint64_t> staging_;     ///< host side of the fingerprints
  detail::nccl::exchange_events exchanges_;  ///< one recycled event per exchange in flight
};

}  // namespace terse

#include <terse/transport/detail/nccl_transport.inl>  // IWYU pragma: export

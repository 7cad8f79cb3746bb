#pragma once
/// @file
/// `terse::mpi_transport`: the transport verbs (docs/transports.md) between
/// MPI processes, and `terse::mpi_session`, which starts and stops MPI.
///
/// Every verb is built from nonblocking MPI calls polled against the
/// call's deadline, so a silent peer is an errc::timeout, never a hang.
/// Reductions do not use MPI's operators: each rank owns one block, receives
/// every rank's contribution to it, and folds them in rank order in the
/// accumulator type (float for fp16/bf16), then the reduced blocks are
/// gathered. Every rank gets identical bits that match a serial reference,
/// and each phase moves the bandwidth-optimal (W-1)/W of the buffer.
///
/// Device spans are staged through pinned host memory when the including
/// target links terse::cuda; without it they are a compile-time error.
///
/// Needs the terse::mpi target.

#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/mpi_error.hpp>
#include <terse/core/span.hpp>
#include <terse/core/verbs.hpp>
#include <terse/transport/detail/mpi_datatype.hpp>
#include <terse/transport/detail/mpi_exchange.hpp>
#include <terse/transport/detail/mpi_fingerprint.hpp>
#include <terse/transport/detail/mpi_layout.hpp>
#include <terse/transport/detail/mpi_p2p.hpp>
#include <terse/transport/detail/mpi_portability.hpp>
#include <terse/transport/detail/mpi_requests.hpp>
#include <terse/transport/detail/mpi_scratch.hpp>
#include <terse/transport/detail/mpi_staging.hpp>
#include <terse/transport/detail/reduce.hpp>

#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace terse {

/// Starts MPI (MPI_Init_thread) unless it is already running, and stops it
/// (MPI_Finalize) on destruction if this session started it. Make one at
/// the top of main(), before any mpi_transport, and let it outlive them.
///
/// A transport needs no thread support from MPI: it is used by one thread
/// at a time and every wait polls with MPI_Test, so MPI_THREAD_SINGLE (all
/// that SimGrid's SMPI provides) is enough as long as one thread makes
/// every MPI call. A program that calls a transport from several threads,
/// one at a time, requires MPI_THREAD_SERIALIZED.
class mpi_session {
 public:
  /// @param required the least thread support the program works with; less
  ///        is errc::unsupported.
  /// @param requested what MPI_Init_thread asks for (at least `required`):
  ///        MPI_THREAD_SERIALIZED by default, so an MPI that offers it lets
  ///        the program move a transport between threads.
  /// @throws terse::error(errc::unsupported) when MPI provides less than
  ///         `required`.
  explicit mpi_session(int required = MPI_THREAD_SINGLE, int requested = MPI_THREAD_SERIALIZED)
      : mpi_session(nullptr, nullptr, required, requested)
  {
  }
  mpi_session(int* argc, char*** argv, int required = MPI_THREAD_SINGLE, int requested = MPI_THREAD_SERIALIZED);
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;
  ~mpi_session();

  /// True when this session called MPI_Init_thread (and will finalize).
  bool owns_mpi() const noexcept { return owns_; }
  /// The thread support MPI provides (MPI_Init_thread's answer, or
  /// MPI_Query_thread's when MPI was already running).
  int thread_level() const noexcept { return provided_; }

 private:
  bool owns_ = false;
  int provided_ = MPI_THREAD_SINGLE;
};

/// The transport verbs over the processes of an MPI communicator.
///
/// Construction is collective over `comm`: every rank builds its transport
/// in the same order. The transport works on private duplicates of `comm`
/// (with MPI_ERRORS_RETURN, so MPI failures become terse::error(errc::mpi))
/// and frees them when destroyed. It is used by one thread at a time.
///
/// Failure handling follows docs/transports.md: a verb returns or throws
/// within options().timeout plus a little slack; after errc::timeout (or an
/// MPI error while data moves) healthy() is false and every later verb
/// throws errc::peer_failed. Checked mode compares a fingerprint of the call
/// across ranks before data moves, so mismatched calls raise on every rank
/// and leave the transport usable. With options().failures =
/// failure_scope::peer, a blocking send, recv or sendrecv whose peer stays
/// silent past the deadline raises terse::peer_error (errc::timeout) naming
/// it instead, and the transport stays healthy for the other ranks (Open
/// MPI reports no dead process: see docs/gossip.md, "Failures").
///
/// After a verb has thrown errc::timeout, MPI may still read the buffers it
/// was sending (a late peer can still match them): keep those buffers alive
/// until the transport is destroyed. Pending receives are cancelled at once.
class mpi_transport {
 public:
  /// Host memory; device memory too when built with terse::cuda (staged
  /// through pinned host buffers).
  template <memory_space S>
  static constexpr bool accepts_memory = detail::mpi::space_supported<S>;

  /// Elements per MPI call unless set_max_chunk_elements says otherwise:
  /// at most 1 GiB per message (8-byte elements), well below the 2 GiB
  /// where int byte counts inside MPI implementations overflow.
  static constexpr std::size_t default_max_chunk_elements = std::size_t{1} << 27;

  /// Duplicates `comm` (collectively, within options.timeout).
  /// @throws terse::error(errc::invalid_argument) when MPI is not running or
  ///         `comm` is MPI_COMM_NULL; errc::timeout when a rank does not join
  ///         (the unfinished duplication is then left to MPI).
  explicit mpi_transport(MPI_Comm comm = MPI_COMM_WORLD, transport_options options = {});
  mpi_transport(const mpi_transport&) = delete;
  mpi_transport& operator=(const mpi_transport&) = delete;
  /// Takes over `other`'s communicators, requests and buffers (MPI holds
  /// pointers only into heap memory, which does not move). `other` is left
  /// empty: unhealthy, it may only be destroyed (freeing nothing) or
  /// assigned to.
  mpi_transport(mpi_transport&& other) noexcept;
  mpi_transport& operator=(mpi_transport&& other) noexcept;
  /// Waits (at most min(timeout, 10 s)) for requests a failed call left
  /// behind, then frees the communicators. Never throws.
  ~mpi_transport();

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  const transport_options& options() const noexcept { return options_; }
  /// False after a timeout or a failure while data moved; then every verb
  /// throws errc::peer_failed and a new transport must be built.
  bool healthy() const noexcept { return healthy_; }

  /// The most elements one MPI call carries; larger buffers are split.
  std::size_t max_chunk_elements() const noexcept { return max_chunk_; }
  /// Sets the split size (1 .. INT_MAX). All ranks must use the same value:
  /// message boundaries depend on it, and checked mode compares it.
  void set_max_chunk_elements(std::size_t elements);

  /// out = op over ranks of in. `in` may be `out`.
  template <reducible T, memory_space S>
  requires(!std::is_const_v<T>) void allreduce(std::type_identity_t<span<const T, S>> in, span<T, S> out, reduce_op op);
  /// In place: buffer = op over ranks of buffer.
  template <reducible T, memory_space S>
  requires(!std::is_const_v<T>) void allreduce(span<T, S> buffer, reduce_op op);
  /// out = op over ranks of block rank() of in; in.size() == size() * out.size().
  /// `out` may be this rank's block of in.
  template <reducible T, memory_space S>
  requires(!std::is_const_v<T>) void reduce_scatter(std::type_identity_t<span<const T, S>> in, span<T, S> out,
                                                    reduce_op op);
  /// Block r of out = rank r's in; out.size() == size() * in.size(). `in`
  /// may be this rank's block of out.
  template <transportable T, memory_space S>
  requires(!std::is_const_v<T>) void allgather(std::type_identity_t<span<const T, S>> in, span<T, S> out);
  /// Rank r's in lands at offset counts[0] + ... + counts[r-1] of out.
  template <transportable T, memory_space S>
  requires(!std::is_const_v<T>) void allgatherv(std::type_identity_t<span<const T, S>> in, span<T, S> out,
                                                host_span<const std::size_t> counts);
  /// Every rank's buffer = root's buffer.
  template <transportable T, memory_space S>
  requires(!std::is_const_v<T>) void broadcast(span<T, S> buffer, int root);
  /// Sends buffer to `peer` on `tag` (>= 0). May wait until the receive is
  /// posted, as MPI_Send may; use sendrecv for exchanges. If the receiver
  /// expected another size or type, it drains the message and raises
  /// errc::mismatch; the sender returns normally and is not told. Bad
  /// arguments (peer, tag) raise invalid_argument here only: the intended
  /// receiver cannot be told and times out.
  template <transportable T, memory_space S>
  void send(span<T, S> buffer, int peer, int tag);
  /// Receives exactly buffer.size() elements from `peer` on `tag`.
  /// @throws terse::error(errc::mismatch) when the sender's size or type
  ///         differs; the message is consumed and the transport stays usable.
  ///         Checked mode catches every such case (a header travels first);
  ///         unchecked mode catches it whenever both sides split the data
  ///         into the same number of messages (always, below the chunk size).
  template <transportable T, memory_space S>
  requires(!std::is_const_v<T>) void recv(span<T, S> buffer, int peer, int tag);
  /// Sends to `dest` and receives from `source` at once (a ring exchange
  /// cannot deadlock).
  template <transportable T, memory_space S>
  requires(!std::is_const_v<T>) void sendrecv(std::type_identity_t<span<const T, S>> send_buffer, int dest,
                                              span<T, S> recv_buffer, int source, int tag);
  /// Returns once every rank has entered.
  void barrier();

  /// Posts every message of a grouped exchange (core/exchange.hpp) on host
  /// buffers: MPI_Isend and MPI_Irecv on the point-to-point communicator,
  /// chunked and, in checked mode, headed like send/recv. Peers must be
  /// ranks and the tag in 0 .. MPI_TAG_UB (else errc::invalid_argument).
  /// A timeout breaks the transport as a blocking verb's does; a mismatch
  /// (the message is drained) does not.
  exchange_id start_exchange(host_span<const outgoing<>> sends, host_span<const incoming<>> recvs, int tag);
  /// Progresses every message of `id` once (MPI_Test each); true when all
  /// have completed.
  bool test(exchange_id id);
  /// Polls `id` until it completes or its deadline passes.
  void wait(exchange_id id);

  /// Collective over this transport (every rank calls it, within
  /// options().timeout). Ranks passing the same colour (>= 0) form one
  /// sub-transport, ranked by (key, parent rank); a negative colour gives a
  /// transport of this rank alone (size 1). The ranks first agree under the
  /// deadline (an allgather of (colour, key), then a confirming round of
  /// point-to-point messages), so a dead or late peer is errc::timeout,
  /// never a hang there; then MPI_Comm_split runs (blocking: every rank has
  /// just shown it is alive) and the sub-transport is built on the new
  /// communicator (duplicated twice, as any mpi_transport, then freed) with
  /// this transport's options and max_chunk_elements. Throws errc::mismatch
  /// on every rank when the ranks made different split calls (split on
  /// some, split_shared on others).
  mpi_transport split(int colour, int key);
  /// The ranks that share this rank's host (MPI_Comm_split_type with
  /// MPI_COMM_TYPE_SHARED), ranked by their rank here; agreed on first like
  /// split.
  mpi_transport split_shared();

 private:
  using clock = detail::mpi::clock;
  using fingerprint = detail::mpi::call_fingerprint;

  // Phase tags on the collective communicator (user tags use the other one).
  static constexpr int scatter_reduce_tag = 1;
  static constexpr int gather_tag = 2;
  static constexpr int broadcast_scatter_tag = 3;
  static constexpr int broadcast_gather_tag = 4;
  static constexpr int split_confirm_tag = 5;
  // The first word of a split's allgather: which split call a rank made.
  static constexpr std::int64_t split_by_colour_kind = 0x5e11;
  static constexpr std::int64_t split_shared_kind = 0x5e12;
  // Words of the control block: fingerprint {w,-w} out and in, two p2p headers.
  static constexpr int fingerprint_words = 2 * fingerprint::words;
  static constexpr int control_words = 2 * fingerprint_words + 2 * detail::mpi::header_words;

  clock::time_point begin_call() const;
  void agree(fingerprint call, const std::string& problem, std::string_view verb_name, clock::time_point deadline);
  template <class Body>
  void move_data(Body&& body, bool mismatch_keeps_health = false);
  void await(detail::mpi::request_set& set, clock::time_point deadline, std::string_view what);
  detail::mpi::exchange_slot& exchange_of(exchange_id id);
  void spend(detail::mpi::exchange_slot& slot) noexcept;
  [[noreturn]] void timed_out(std::string_view what, const std::string& pending);
  void abandon_all() noexcept;
  fingerprint make_fingerprint(verb what) const noexcept;
  std::vector<std::int64_t> agree_on_split(std::int64_t kind, int colour, int key);
  mpi_transport adopt_split(MPI_Comm made);
  void swap_with(mpi_transport& other) noexcept;

  template <class T>
  void post_recv(T* data, std::size_t count, int peer, int tag);
  template <class T>
  void post_send(const T* data, std::size_t count, int peer, int tag);
  template <class T>
  void reduce_alone(const T* in, T* out, std::size_t n, reduce_op op);
  template <class T>
  void reduce_own_block(const T* in, T* own_out, reduce_op op, clock::time_point deadline);
  template <class T>
  void gather_blocks(T* buffer, int tag, clock::time_point deadline);
  template <class T>
  void allreduce_host(const T* in, T* out, std::size_t n, reduce_op op, clock::time_point deadline);
  template <class T>
  void broadcast_host(T* buffer, std::size_t n, int root, clock::time_point deadline);
  template <class T>
  void exchange_host(const T* send_data, std::size_t send_count, int dest, T* recv_data, std::size_t recv_count,
                     int source, int tag, clock::time_point deadline);

  MPI_Comm collective_comm_ = MPI_COMM_NULL;
  MPI_Comm p2p_comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  int tag_ub_ = 32767;
  transport_options options_;
  std::size_t max_chunk_ = default_max_chunk_elements;
  bool healthy_ = true;

  detail::mpi::block_layout layout_;
  detail::mpi::request_set requests_;
  detail::mpi::p2p_receive receive_;
  detail::mpi::abandoned_requests abandoned_;
  // Fingerprint and header words live on the heap so they can be leaked if
  // MPI still owns them when the transport goes away.
  std::unique_ptr<std::int64_t[]> control_;
  detail::mpi::scratch_buffer contributions_;  // the W-1 contributions to this rank's block
  detail::mpi::staging_buffers staging_;       // device spans, through pinned host memory
  // On the heap so it can be leaked if MPI still owns its header words.
  std::unique_ptr<detail::mpi::exchange_table> exchanges_;
};

}  // namespace terse

#include <terse/transport/detail/mpi_transport.inl>
// After the verbs: the exchange reuses their argument checks.
#include <terse/transport/detail/mpi_exchange.inl>

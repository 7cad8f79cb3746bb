#pragma once
/// @file
/// Member bodies of terse::mpi_session and terse::mpi_transport (included
/// by terse/transport/mpi.hpp; never include it directly). Over 400 lines:
/// one body per verb, each short; the grouped exchange lives apart in
/// mpi_exchange.inl.

#include <algorithm>
#include <cstring>
#include <functional>
#include <utility>

namespace terse {

// --- mpi_session ---------------------------------------------------------------

inline mpi_session::mpi_session(int* argc, char*** argv, int required, int requested)
{
  int initialized = 0;
  TERSE_MPI_TRY(MPI_Initialized(&initialized));
  if (initialized != 0) {
    TERSE_MPI_TRY(MPI_Query_thread(&provided_));
  } else {
    TERSE_MPI_TRY(MPI_Init_thread(argc, argv, std::max(required, requested), &provided_));
    owns_ = true;
  }
  if (provided_ < required) {
    const int provided = provided_;
    if (owns_) {
      TERSE_MPI_TRY_NOTHROW(MPI_Finalize());
      owns_ = false;
    }
    TERSE_FAIL(errc::unsupported, "MPI provides thread level " + std::to_string(provided) + " but " +
                                      std::to_string(required) +
                                      " was required (MPI_THREAD_SINGLE is enough when one thread makes every MPI "
                                      "call)");
  }
}

inline mpi_session::~mpi_session()
{
  if (!owns_) {
    return;
  }
  int finalized = 0;
  if (MPI_Finalized(&finalized) == MPI_SUCCESS && finalized == 0) {
    TERSE_MPI_TRY_NOTHROW(MPI_Finalize());
  }
}

// --- construction --------------------------------------------------------------

inline mpi_transport::mpi_transport(MPI_Comm comm, transport_options options) : options_(options), layout_(1)
{
  int initialized = 0;
  TERSE_MPI_TRY(MPI_Initialized(&initialized));
  TERSE_CHECK(initialized != 0, errc::invalid_argument,
              "mpi_transport: MPI is not initialized; create a terse::mpi_session first");
  TERSE_EXPECTS(comm != MPI_COMM_NULL, "mpi_transport needs a communicator");
  TERSE_EXPECTS(options.timeout.count() > 0, "the timeout must be positive");

  // Two duplicates: collectives use internal tags on one, users' tags live on
  // the other, so no user tag can match a collective's message.
  // MPI writes the new handles when the duplication completes, so they live
  // on the heap: if a rank never joins, they are left to MPI, not to a
  // destroyed object.
  const clock::time_point deadline = detail::mpi::deadline_after(options_.timeout);
  auto handles = std::make_unique<MPI_Comm[]>(2);
  try {
    detail::mpi::duplicate_twice(comm, handles.get(), deadline,
                                 "mpi_transport: not every rank of the communicator joined within " +
                                     std::to_string(options_.timeout.count()) + " ms");
  } catch (const error& e) {
    if (e.code() == errc::timeout) {
      (void)handles.release();
    }
    throw;
  }
  collective_comm_ = handles[0];
  p2p_comm_ = handles[1];

  try {
    TERSE_MPI_TRY(MPI_Comm_set_errhandler(collective_comm_, MPI_ERRORS_RETURN));
    TERSE_MPI_TRY(MPI_Comm_set_errhandler(p2p_comm_, MPI_ERRORS_RETURN));
    TERSE_MPI_TRY(MPI_Comm_rank(collective_comm_, &rank_));
    TERSE_MPI_TRY(MPI_Comm_size(collective_comm_, &size_));
    void* tag_ub = nullptr;
    int found = 0;
    TERSE_MPI_TRY(MPI_Comm_get_attr(p2p_comm_, MPI_TAG_UB, &tag_ub, &found));
    if (found != 0 && tag_ub != nullptr) {
      tag_ub_ = *static_cast<int*>(tag_ub);
    }
    layout_ = detail::mpi::block_layout(size_);
    control_ = std::make_unique<std::int64_t[]>(control_words);
    exchanges_ = std::make_unique<detail::mpi::exchange_table>();
  } catch (...) {
    TERSE_MPI_TRY_NOTHROW(MPI_Comm_free(&collective_comm_));
    TERSE_MPI_TRY_NOTHROW(MPI_Comm_free(&p2p_comm_));
    throw;
  }
}

inline mpi_transport::mpi_transport(mpi_transport&& other) noexcept
    : collective_comm_(std::exchange(other.collective_comm_, MPI_COMM_NULL)),
      p2p_comm_(std::exchange(other.p2p_comm_, MPI_COMM_NULL)),
      rank_(other.rank_),
      size_(other.size_),
      tag_ub_(other.tag_ub_),
      options_(other.options_),
      max_chunk_(other.max_chunk_),
      healthy_(std::exchange(other.healthy_, false)),
      layout_(std::move(other.layout_)),
      requests_(std::move(other.requests_)),
      receive_(std::move(other.receive_)),
      abandoned_(std::move(other.abandoned_)),
      control_(std::move(other.control_)),
      contributions_(std::move(other.contributions_)),
      staging_(std::move(other.staging_)),
      exchanges_(std::move(other.exchanges_))
{
}

inline mpi_transport& mpi_transport::operator=(mpi_transport&& other) noexcept
{
  if (this != &other) {
    mpi_transport taken(std::move(other));
    swap_with(taken);  // `taken` now holds what this transport had, and frees it
  }
  return *this;
}

inline void mpi_transport::swap_with(mpi_transport& other) noexcept
{
  using std::swap;
  swap(collective_comm_, other.collective_comm_);
  swap(p2p_comm_, other.p2p_comm_);
  swap(rank_, other.rank_);
  swap(size_, other.size_);
  swap(tag_ub_, other.tag_ub_);
  swap(options_, other.options_);
  swap(max_chunk_, other.max_chunk_);
  swap(healthy_, other.healthy_);
  swap(layout_, other.layout_);
  swap(requests_, other.requests_);
  swap(receive_, other.receive_);
  swap(abandoned_, other.abandoned_);
  swap(control_, other.control_);
  swap(contributions_, other.contributions_);
  swap(staging_, other.staging_);
  swap(exchanges_, other.exchanges_);
}

inline mpi_transport::~mpi_transport()
{
  if (collective_comm_ == MPI_COMM_NULL && p2p_comm_ == MPI_COMM_NULL) {
    return;  // moved from: it owns nothing
  }
  int finalized = 0;
  if (MPI_Finalized(&finalized) != MPI_SUCCESS || finalized != 0) {
    // Too late to call MPI: leave everything MPI might still touch.
    (void)control_.release();
    contributions_.leak();
    receive_.leak_drain();
    staging_.leak();
    (void)exchanges_.release();
    return;
  }
  abandon_all();
  detail::mpi::abandoned_requests::leftovers left;
  if (!abandoned_.empty()) {
    // Give a late peer a chance to finish what a failed call started.
    const auto bound = std::min(options_.timeout, std::chrono::milliseconds(std::chrono::seconds(10)));
    (void)abandoned_.drain(detail::mpi::deadline_after(bound));
    left = abandoned_.release();
  }
  if (left.buffers_in_use) {
    (void)control_.release();
    contributions_.leak();
    receive_.leak_drain();
    staging_.leak();
    (void)exchanges_.release();
  }
  if (!left.collective_pending) {
    // A communicator with an unfinished collective is left to MPI_Finalize.
    TERSE_MPI_TRY_NOTHROW(MPI_Comm_free(&collective_comm_));
  }
  TERSE_MPI_TRY_NOTHROW(MPI_Comm_free(&p2p_comm_));
}

inline void mpi_transport::set_max_chunk_elements(std::size_t elements)
{
  TERSE_EXPECTS(elements >= 1 && elements <= static_cast<std::size_t>(INT_MAX),
                "max_chunk_elements must be in 1 .. INT_MAX (one MPI call's count)");
  max_chunk_ = elements;
}

// --- the steps every verb shares -------------------------------------------------

inline mpi_transport::clock::time_point mpi_transport::begin_call() const
{
  TERSE_CHECK(healthy_, errc::peer_failed,
              "mpi_transport: an earlier call timed out or failed, so the ranks no longer agree on what was "
              "sent; build a new transport");
  return detail::mpi::deadline_after(options_.timeout);
}

inline mpi_transport::fingerprint mpi_transport::make_fingerprint(verb what) const noexcept
{
  fingerprint call;
  call.what = what;
  call.chunk = static_cast<std::int64_t>(max_chunk_);
  return call;
}

// Checked mode: one small allreduce tells every rank whether all made the
// same call with valid arguments. Unchecked: only local arguments are checked.
inline void mpi_transport::agree(fingerprint call, const std::string& problem, std::string_view verb_name,
                                 clock::time_point deadline)
{
  const auto prefix = [&] { return "mpi_transport::" + std::string(verb_name) + ": "; };
  if (!options_.checked) {
    if (!problem.empty()) {
      TERSE_FAIL(errc::invalid_argument, prefix() + problem);
    }
    return;
  }
  call.valid = problem.empty();
  std::int64_t* out = control_.get();
  std::int64_t* in = out + fingerprint_words;
  call.encode(out, rank_, size_);
  MPI_Request request = MPI_REQUEST_NULL;
  move_data([&] {
    TERSE_MPI_TRY(MPI_Iallreduce(out, in, fingerprint_words, MPI_INT64_T, MPI_MAX, collective_comm_, &request));
    requests_.add(request, detail::mpi::request_kind::collective, -1);
    await(requests_, deadline, "the call fingerprint");
  });
  if (!problem.empty()) {
    TERSE_FAIL(errc::invalid_argument, prefix() + problem);
  }
  const detail::mpi::agreement result = detail::mpi::decode_agreement(in, size_);
  if (result.first_invalid_rank >= 0) {
    TERSE_FAIL(errc::mismatch, prefix() + "rank " + std::to_string(result.first_invalid_rank) +
                                   " passed invalid arguments (it raised invalid_argument)");
  }
  if (!result.disagreement.empty()) {
    TERSE_FAIL(errc::mismatch, prefix() + result.disagreement);
  }
}

// Runs a step that moves data. If it fails, the ranks no longer agree on what
// was sent: the transport turns unhealthy (except for a point-to-point size
// mismatch, which the receiver drained cleanly) and unfinished requests are
// kept for the destructor.
template <class Body>
void mpi_transport::move_data(Body&& body, bool mismatch_keeps_health)
{
  try {
    body();
  } catch (const peer_error&) {
    throw;  // failure_scope::peer: one silent peer; its call's requests are already cancelled
  } catch (const error& e) {
    abandon_all();
    if (!(mismatch_keeps_health && e.code() == errc::mismatch)) {
      healthy_ = false;
    }
    throw;
  } catch (...) {
    abandon_all();
    healthy_ = false;
    throw;
  }
}

inline void mpi_transport::await(detail::mpi::request_set& set, clock::time_point deadline, std::string_view what)
{
  detail::mpi::poll_backoff backoff;
  while (!set.test_all()) {
    if (clock::now() >= deadline) {
      timed_out(what, set.describe_pending());
    }
    backoff.pause();
  }
}

inline void mpi_transport::timed_out(std::string_view what, const std::string& pending)
{
  abandon_all();
  healthy_ = false;
  TERSE_FAIL(errc::timeout, "mpi_transport: " + pending + " did not answer within " +
                                std::to_string(options_.timeout.count()) + " ms (waiting for " + std::string(what) +
                                "); the transport is now unhealthy");
}

inline void mpi_transport::abandon_all() noexcept
{
  requests_.abandon_into(abandoned_);
  receive_.requests().abandon_into(abandoned_);
  if (exchanges_) {
    exchanges_->abandon_all(abandoned_);
  }
}

// --- chunked posting ---------------------------------------------------------------

// A block longer than max_chunk_ travels as several messages on one tag; MPI
// keeps them in order, and both sides split it the same way.
template <class T>
void mpi_transport::post_recv(T* data, std::size_t count, int peer, int tag)
{
  const MPI_Datatype type = detail::mpi::datatype_of<T>();
  for (std::size_t offset = 0; offset < count; offset += max_chunk_) {
    const int length = static_cast<int>(std::min(max_chunk_, count - offset));
    MPI_Request request = MPI_REQUEST_NULL;
    TERSE_MPI_TRY(MPI_Irecv(data + offset, length, type, peer, tag, collective_comm_, &request));
    requests_.add(request, detail::mpi::request_kind::receive, peer, type, length);
  }
}

template <class T>
void mpi_transport::post_send(const T* data, std::size_t count, int peer, int tag)
{
  const MPI_Datatype type = detail::mpi::datatype_of<T>();
  for (std::size_t offset = 0; offset < count; offset += max_chunk_) {
    const int length = static_cast<int>(std::min(max_chunk_, count - offset));
    MPI_Request request = MPI_REQUEST_NULL;
    TERSE_MPI_TRY(MPI_Isend(data + offset, length, type, peer, tag, collective_comm_, &request));
    requests_.add(request, detail::mpi::request_kind::send, peer);
  }
}

// --- host algorithms on raw pointers ---------------------------------------------

// One rank: the reduction of a single contribution (average divides by 1).
template <class T>
void mpi_transport::reduce_alone(const T* in, T* out, std::size_t n, reduce_op op)
{
  detail::reduce_rank_order<T>(
      op, 1, n, [&](int) { return in; }, 1, [&](int) { return out; });
}

// Direct reduce-scatter over layout_: rank j receives every rank's block j and
// folds the W contributions in rank order. Each rank sends (W-1)/W of `in`.
template <class T>
void mpi_transport::reduce_own_block(const T* in, T* own_out, reduce_op op, clock::time_point deadline)
{
  const std::size_t own = layout_.length(rank_);
  T* contributions = contributions_.reserve_for<T>(own * static_cast<std::size_t>(size_ - 1));
  const auto slot = [&](int peer) {
    return contributions + own * static_cast<std::size_t>(peer < rank_ ? peer : peer - 1);
  };
  for (int peer = 0; peer < size_; ++peer) {
    if (peer != rank_) {
      post_recv(slot(peer), own, peer, scatter_reduce_tag);
    }
  }
  for (int peer = 0; peer < size_; ++peer) {
    if (peer != rank_) {
      post_send(in + layout_.offset(peer), layout_.length(peer), peer, scatter_reduce_tag);
    }
  }
  await(requests_, deadline, "reduce-scatter contributions");
  const T* mine = in + layout_.offset(rank_);
  detail::reduce_rank_order<T>(
      op, size_, own, [&](int r) -> const T* { return r == rank_ ? mine : slot(r); }, 1, [&](int) { return own_out; });
}

// Every rank's block of `buffer` (per layout_) is in place; fetch the others.
template <class T>
void mpi_transport::gather_blocks(T* buffer, int tag, clock::time_point deadline)
{
  for (int peer = 0; peer < size_; ++peer) {
    if (peer != rank_) {
      post_recv(buffer + layout_.offset(peer), layout_.length(peer), peer, tag);
    }
  }
  for (int peer = 0; peer < size_; ++peer) {
    if (peer != rank_) {
      post_send(buffer + layout_.offset(rank_), layout_.length(rank_), peer, tag);
    }
  }
  await(requests_, deadline, "gathered blocks");
}

template <class T>
void mpi_transport::allreduce_host(const T* in, T* out, std::size_t n, reduce_op op, clock::time_point deadline)
{
  layout_.even(n);
  if (size_ == 1) {
    reduce_alone(in, out, n, op);
    return;
  }
  // Reduce-scatter, then allgather the reduced blocks: 2(W-1)/W of the buffer.
  // In place is safe: every send of `in` completes before `out` is written.
  reduce_own_block(in, out + layout_.offset(rank_), op, deadline);
  gather_blocks(out, gather_tag, deadline);
}

// Scatter the root's blocks, then every rank passes its block on: the root
// sends 2(W-1)/W of the buffer, every other rank receives it once.
template <class T>
void mpi_transport::broadcast_host(T* buffer, std::size_t n, int root, clock::time_point deadline)
{
  if (size_ == 1) {
    return;
  }
  layout_.even(n);
  if (rank_ == root) {
    for (int peer = 0; peer < size_; ++peer) {
      if (peer != root) {
        post_send(buffer + layout_.offset(peer), layout_.length(peer), peer, broadcast_scatter_tag);
      }
    }
  } else {
    post_recv(buffer + layout_.offset(rank_), layout_.length(rank_), root, broadcast_scatter_tag);
  }
  await(requests_, deadline, "the broadcast's scatter from the root");
  if (rank_ != root) {
    for (int peer = 0; peer < size_; ++peer) {
      if (peer != rank_) {
        post_recv(buffer + layout_.offset(peer), layout_.length(peer), peer, broadcast_gather_tag);
      }
    }
  }
  for (int peer = 0; peer < size_; ++peer) {
    if (peer != rank_ && peer != root) {
      post_send(buffer + layout_.offset(rank_), layout_.length(rank_), peer, broadcast_gather_tag);
    }
  }
  await(requests_, deadline, "the broadcast's blocks");
}

// One send and/or one receive (a null pointer with count 0 and peer -1 skips
// that side), driven together so neither can starve the other.
template <class T>
void mpi_transport::exchange_host(const T* send_data, std::size_t send_count, int dest, T* recv_data,
                                  std::size_t recv_count, int source, int tag, clock::time_point deadline)
{
  std::uint64_t* headers = reinterpret_cast<std::uint64_t*>(control_.get() + 2 * fingerprint_words);
  const bool checked = options_.checked;
  if (source >= 0) {
    const detail::mpi::p2p_receive::target into{recv_data, recv_count, sizeof(T), detail::mpi::datatype_of<T>(),
                                                data_type_v<T>};
    receive_.start(into, source, tag, p2p_comm_, max_chunk_, checked ? headers + detail::mpi::header_words : nullptr);
  }
  if (dest >= 0) {
    const detail::mpi::outgoing_message message{send_data, send_count, sizeof(T), detail::mpi::datatype_of<T>(),
                                                data_type_v<T>};
    detail::mpi::post_p2p_send(requests_, message, dest, tag, p2p_comm_, max_chunk_, checked ? headers : nullptr);
  }
  detail::mpi::poll_backoff backoff;
  bool received = source < 0;
  while (true) {
    if (!received) {
      received = receive_.advance();
    }
    const bool sent = requests_.test_all();
    if (received && sent) {
      break;
    }
    if (clock::now() >= deadline && options_.failures == failure_scope::peer) {
      // One silent peer: cancel this call's requests and name it; exchanges
      // with the others go on (docs/gossip.md, "Failures").
      const int silent = received ? dest : source;
      requests_.abandon_into(abandoned_);
      receive_.requests().abandon_into(abandoned_);
      throw peer_error(silent,
                       "mpi_transport: rank " + std::to_string(silent) + " did not answer within " +
                           std::to_string(options_.timeout.count()) + " ms (" +
                           (received ? "receiving our message" : "sending its message") + ", tag " +
                           std::to_string(tag) + "); the transport stays usable with the other ranks",
                       TERSE_HERE, errc::timeout);
    }
    if (clock::now() >= deadline) {
      std::string pending = received ? std::string() : "rank " + std::to_string(source) + " (sending)";
      if (!sent) {
        pending += (pending.empty() ? "" : " and ") + ("rank " + std::to_string(dest) + " (receiving)");
      }
      timed_out(source >= 0 && dest >= 0 ? "sendrecv" : (source >= 0 ? "recv" : "send"), pending);
    }
    backoff.pause();
  }
  if (!receive_.mismatch().empty()) {
    TERSE_FAIL(errc::mismatch, "mpi_transport: " + receive_.mismatch());
  }
}

// --- argument checks ----------------------------------------------------------------

namespace detail::mpi {

template <class T, class U>
bool overlaps(const T* a, std::size_t a_count, const U* b, std::size_t b_count) noexcept
{
  const auto* a0 = reinterpret_cast<const std::byte*>(a);
  const auto* b0 = reinterpret_cast<const std::byte*>(b);
  const auto* a1 = a0 + a_count * sizeof(T);
  const auto* b1 = b0 + b_count * sizeof(U);
  return a_count != 0 && b_count != 0 && std::less<>{}(a0, b1) && std::less<>{}(b0, a1);
}

template <class T>
std::string check_op(reduce_op op)
{
  if (op == reduce_op::average && !std::is_floating_point_v<accumulator_t<T>>) {
    return "average of an integer type is not defined (use sum and divide)";
  }
  if (static_cast<unsigned>(op) > static_cast<unsigned>(reduce_op::min)) {
    return "unknown reduce_op";
  }
  return {};
}

inline std::string sizes(const char* what, std::size_t a, std::size_t b)
{
  return std::string(what) + " (" + std::to_string(a) + " vs " + std::to_string(b) + ")";
}

}  // namespace detail::mpi

// --- the verbs ---------------------------------------------------------------------

#define TERSE_MPI_REQUIRE_SPACE(S)                                                                                \
  static_assert(detail::mpi::space_supported<S>,                                                                  \
                "terse::mpi_transport: device spans are staged through pinned host memory, which needs the CUDA " \
                "runtime: link the terse::cuda target (it defines TERSE_WITH_CUDA) or pass host spans")

template <reducible T, memory_space S>
requires(!std::is_const_v<T>) void mpi_transport::allreduce(std::type_identity_t<span<const T, S>> in, span<T, S> out,
                                                            reduce_op op)
{
  TERSE_MPI_REQUIRE_SPACE(S);
  const clock::time_point deadline = begin_call();
  const std::size_t n = out.size();
  std::string problem = detail::mpi::check_op<T>(op);
  if (problem.empty() && in.size() != n) {
    problem = detail::mpi::sizes("expected in.size() == out.size()", in.size(), n);
  }
  if (problem.empty() && in.data() != out.data() && detail::mpi::overlaps(in.data(), in.size(), out.data(), n)) {
    problem = "in and out overlap without being the same buffer";
  }
  fingerprint call = make_fingerprint(verb::allreduce);
  call.type = static_cast<std::int64_t>(data_type_v<T>);
  call.op = static_cast<std::int64_t>(op);
  call.count = static_cast<std::int64_t>(n);
  agree(call, problem, "allreduce", deadline);
  move_data([&] {
    if constexpr (S == memory_space::host) {
      allreduce_host(in.data(), out.data(), n, op, deadline);
    } else {
#if TERSE_MPI_DEVICE_STAGING
      T* stage = staging_.outgoing<T>(n);
      detail::mpi::copy_to_host(stage, in.data(), n * sizeof(T));
      allreduce_host(stage, stage, n, op, deadline);
      detail::mpi::copy_to_device(out.data(), stage, n * sizeof(T));
#endif
    }
  });
}

template <reducible T, memory_space S>
requires(!std::is_const_v<T>) void mpi_transport::allreduce(span<T, S> buffer, reduce_op op)
{
  allreduce<T, S>(span<const T, S>(buffer), buffer, op);
}

template <reducible T, memory_space S>
requires(!std::is_const_v<T>) void mpi_transport::reduce_scatter(std::type_identity_t<span<const T, S>> in,
                                                                 span<T, S> out, reduce_op op)
{
  TERSE_MPI_REQUIRE_SPACE(S);
  const clock::time_point deadline = begin_call();
  const std::size_t m = out.size();
  const std::size_t world = static_cast<std::size_t>(size_);
  std::string problem = detail::mpi::check_op<T>(op);
  if (problem.empty() && in.size() != world * m) {
    problem = detail::mpi::sizes("expected in.size() == size() * out.size()", in.size(), world * m);
  }
  const T* own_block = in.data() + static_cast<std::size_t>(rank_) * m;
  if (problem.empty() && out.data() != own_block && detail::mpi::overlaps(in.data(), in.size(), out.data(), m)) {
    problem = "out overlaps in without being this rank's block of it";
  }
  fingerprint call = make_fingerprint(verb::reduce_scatter);
  call.type = static_cast<std::int64_t>(data_type_v<T>);
  call.op = static_cast<std::int64_t>(op);
  call.count = static_cast<std::int64_t>(m);
  agree(call, problem, "reduce_scatter", deadline);
  move_data([&] {
    layout_.uniform(m);
    if constexpr (S == memory_space::host) {
      if (size_ == 1) {
        reduce_alone(in.data(), out.data(), m, op);
      } else {
        reduce_own_block(in.data(), out.data(), op, deadline);
      }
    } else {
#if TERSE_MPI_DEVICE_STAGING
      T* stage = staging_.outgoing<T>(world * m);
      T* result = staging_.incoming<T>(m);
      detail::mpi::copy_to_host(stage, in.data(), world * m * sizeof(T));
      if (size_ == 1) {
        reduce_alone(stage, result, m, op);
      } else {
        reduce_own_block(stage, result, op, deadline);
      }
      detail::mpi::copy_to_device(out.data(), result, m * sizeof(T));
#endif
    }
  });
}

template <transportable T, memory_space S>
requires(!std::is_const_v<T>) void mpi_transport::allgather(std::type_identity_t<span<const T, S>> in, span<T, S> out)
{
  TERSE_MPI_REQUIRE_SPACE(S);
  const clock::time_point deadline = begin_call();
  const std::size_t m = in.size();
  const std::size_t world = static_cast<std::size_t>(size_);
  std::string problem;
  if (out.size() != world * m) {
    problem = detail::mpi::sizes("expected out.size() == size() * in.size()", out.size(), world * m);
  }
  T* own_block = out.data() + static_cast<std::size_t>(rank_) * m;
  if (problem.empty() && in.data() != own_block && detail::mpi::overlaps(in.data(), m, out.data(), out.size())) {
    problem = "in overlaps out without being this rank's block of it";
  }
  fingerprint call = make_fingerprint(verb::allgather);
  call.type = static_cast<std::int64_t>(data_type_v<T>);
  call.count = static_cast<std::int64_t>(m);
  agree(call, problem, "allgather", deadline);
  move_data([&] {
    layout_.uniform(m);
    if constexpr (S == memory_space::host) {
      if (in.data() != own_block && m != 0) {
        std::memcpy(own_block, in.data(), m * sizeof(T));
      }
      gather_blocks(out.data(), gather_tag, deadline);
    } else {
#if TERSE_MPI_DEVICE_STAGING
      T* stage = staging_.incoming<T>(world * m);
      detail::mpi::copy_to_host(stage + static_cast<std::size_t>(rank_) * m, in.data(), m * sizeof(T));
      gather_blocks(stage, gather_tag, deadline);
      detail::mpi::copy_to_device(out.data(), stage, world * m * sizeof(T));
#endif
    }
  });
}

template <transportable T, memory_space S>
requires(!std::is_const_v<T>) void mpi_transport::allgatherv(std::type_identity_t<span<const T, S>> in, span<T, S> out,
                                                             host_span<const std::size_t> counts)
{
  TERSE_MPI_REQUIRE_SPACE(S);
  const clock::time_point deadline = begin_call();
  std::string problem;
  std::size_t total = 0;
  std::size_t own_offset = 0;
  if (counts.size() != static_cast<std::size_t>(size_)) {
    problem = detail::mpi::sizes("expected counts.size() == size()", counts.size(), static_cast<std::size_t>(size_));
  } else {
    for (std::size_t r = 0; r < counts.size(); ++r) {
      own_offset = r == static_cast<std::size_t>(rank_) ? total : own_offset;
      total += counts[r];
    }
    if (counts[static_cast<std::size_t>(rank_)] != in.size()) {
      problem = detail::mpi::sizes("expected counts[rank()] == in.size()", counts[static_cast<std::size_t>(rank_)],
                                   in.size());
    } else if (total != out.size()) {
      problem = detail::mpi::sizes("expected out.size() == sum of counts", out.size(), total);
    }
  }
  T* own_block = out.data() + own_offset;
  if (problem.empty() && in.data() != own_block &&
      detail::mpi::overlaps(in.data(), in.size(), out.data(), out.size())) {
    problem = "in overlaps out without being this rank's block of it";
  }
  fingerprint call = make_fingerprint(verb::allgatherv);
  call.type = static_cast<std::int64_t>(data_type_v<T>);
  call.count = static_cast<std::int64_t>(out.size());
  call.counts_hash = detail::mpi::hash_counts(counts.data(), counts.size());
  agree(call, problem, "allgatherv", deadline);
  move_data([&] {
    layout_.from_counts(counts);
    if constexpr (S == memory_space::host) {
      if (in.data() != own_block && !in.empty()) {
        std::memcpy(own_block, in.data(), in.size() * sizeof(T));
      }
      gather_blocks(out.data(), gather_tag, deadline);
    } else {
#if TERSE_MPI_DEVICE_STAGING
      T* stage = staging_.incoming<T>(total);
      detail::mpi::copy_to_host(stage + own_offset, in.data(), in.size() * sizeof(T));
      gather_blocks(stage, gather_tag, deadline);
      detail::mpi::copy_to_device(out.data(), stage, total * sizeof(T));
#endif
    }
  });
}

template <transportable T, memory_space S>
requires(!std::is_const_v<T>) void mpi_transport::broadcast(span<T, S> buffer, int root)
{
  TERSE_MPI_REQUIRE_SPACE(S);
  const clock::time_point deadline = begin_call();
  std::string problem;
  if (root < 0 || root >= size_) {
    problem = "root " + std::to_string(root) + " is not a rank of this transport";
  }
  fingerprint call = make_fingerprint(verb::broadcast);
  call.type = static_cast<std::int64_t>(data_type_v<T>);
  call.root = root;
  call.count = static_cast<std::int64_t>(buffer.size());
  agree(call, problem, "broadcast", deadline);
  move_data([&] {
    const std::size_t n = buffer.size();
    if constexpr (S == memory_space::host) {
      broadcast_host(buffer.data(), n, root, deadline);
    } else {
#if TERSE_MPI_DEVICE_STAGING
      T* stage = staging_.incoming<T>(n);
      if (rank_ == root) {
        detail::mpi::copy_to_host(stage, buffer.data(), n * sizeof(T));
      }
      broadcast_host(stage, n, root, deadline);
      if (rank_ != root) {
        detail::mpi::copy_to_device(buffer.data(), stage, n * sizeof(T));
      }
#endif
    }
  });
}

namespace detail::mpi {
inline std::string check_peer(int peer, int world, int tag, int tag_ub)
{
  if (peer < 0 || peer >= world) {
    return "peer " + std::to_string(peer) + " is not a rank of this transport";
  }
  if (tag < 0 || tag > tag_ub) {
    return "tag " + std::to_string(tag) + " is outside 0 .. " + std::to_string(tag_ub);
  }
  return {};
}
}  // namespace detail::mpi

template <transportable T, memory_space S>
void mpi_transport::send(span<T, S> buffer, int peer, int tag)
{
  TERSE_MPI_REQUIRE_SPACE(S);
  using V = std::remove_const_t<T>;
  const clock::time_point deadline = begin_call();
  const std::string problem = detail::mpi::check_peer(peer, size_, tag, tag_ub_);
  TERSE_CHECK(problem.empty(), errc::invalid_argument, "mpi_transport::send: " + problem);
  move_data([&] {
    if constexpr (S == memory_space::host) {
      exchange_host<V>(buffer.data(), buffer.size(), peer, nullptr, 0, -1, tag, deadline);
    } else {
#if TERSE_MPI_DEVICE_STAGING
      V* stage = staging_.outgoing<V>(buffer.size());
      detail::mpi::copy_to_host(stage, buffer.data(), buffer.size_bytes());
      exchange_host<V>(stage, buffer.size(), peer, nullptr, 0, -1, tag, deadline);
#endif
    }
  });
}

template <transportable T, memory_space S>
requires(!std::is_const_v<T>) void mpi_transport::recv(span<T, S> buffer, int peer, int tag)
{
  TERSE_MPI_REQUIRE_SPACE(S);
  const clock::time_point deadline = begin_call();
  const std::string problem = detail::mpi::check_peer(peer, size_, tag, tag_ub_);
  TERSE_CHECK(problem.empty(), errc::invalid_argument, "mpi_transport::recv: " + problem);
  move_data(
      [&] {
        if constexpr (S == memory_space::host) {
          exchange_host<T>(nullptr, 0, -1, buffer.data(), buffer.size(), peer, tag, deadline);
        } else {
#if TERSE_MPI_DEVICE_STAGING
          T* stage = staging_.incoming<T>(buffer.size());
          exchange_host<T>(nullptr, 0, -1, stage, buffer.size(), peer, tag, deadline);
          detail::mpi::copy_to_device(buffer.data(), stage, buffer.size_bytes());
#endif
        }
      },
      true);
}

template <transportable T, memory_space S>
requires(!std::is_const_v<T>) void mpi_transport::sendrecv(std::type_identity_t<span<const T, S>> send_buffer, int dest,
                                                           span<T, S> recv_buffer, int source, int tag)
{
  TERSE_MPI_REQUIRE_SPACE(S);
  const clock::time_point deadline = begin_call();
  std::string problem = detail::mpi::check_peer(dest, size_, tag, tag_ub_);
  if (problem.empty()) {
    problem = detail::mpi::check_peer(source, size_, tag, tag_ub_);
  }
  if (problem.empty() &&
      detail::mpi::overlaps(send_buffer.data(), send_buffer.size(), recv_buffer.data(), recv_buffer.size())) {
    problem = "the send and receive buffers overlap";
  }
  TERSE_CHECK(problem.empty(), errc::invalid_argument, "mpi_transport::sendrecv: " + problem);
  move_data(
      [&] {
        if constexpr (S == memory_space::host) {
          exchange_host<T>(send_buffer.data(), send_buffer.size(), dest, recv_buffer.data(), recv_buffer.size(), source,
                           tag, deadline);
        } else {
#if TERSE_MPI_DEVICE_STAGING
          T* outgoing = staging_.outgoing<T>(send_buffer.size());
          T* incoming = staging_.incoming<T>(recv_buffer.size());
          detail::mpi::copy_to_host(outgoing, send_buffer.data(), send_buffer.size_bytes());
          exchange_host<T>(outgoing, send_buffer.size(), dest, incoming, recv_buffer.size(), source, tag, deadline);
          detail::mpi::copy_to_device(recv_buffer.data(), incoming, recv_buffer.size_bytes());
#endif
        }
      },
      true);
}

inline void mpi_transport::barrier()
{
  const clock::time_point deadline = begin_call();
  if (options_.checked) {
    // The fingerprint allreduce cannot finish before every rank has entered.
    agree(make_fingerprint(verb::barrier), {}, "barrier", deadline);
    return;
  }
  move_data([&] {
    MPI_Request request = MPI_REQUEST_NULL;
    TERSE_MPI_TRY(MPI_Ibarrier(collective_comm_, &request));
    requests_.add(request, detail::mpi::request_kind::collective, -1);
    await(requests_, deadline, "the barrier");
  });
}

#undef TERSE_MPI_REQUIRE_SPACE

// --- sub-transports -------------------------------------------------------------------

// Under the deadline, before any blocking MPI call, so a dead or late peer
// is a timeout here: an allgather of (kind, colour, key) (every rank sees
// the same table, so a split called differently fails alike on every rank),
// then a second round of point-to-point messages. A rank that finished the
// first round late, on messages the others had sent before they gave up,
// cannot finish the second (nobody sends it), so it times out too instead
// of blocking alone in MPI_Comm_split; its receives are cancelled, and it
// leaves no collective request behind.
inline std::vector<std::int64_t> mpi_transport::agree_on_split(std::int64_t kind, int colour, int key)
{
  const std::int64_t mine[3] = {kind, colour, key};
  std::vector<std::int64_t> all(3 * static_cast<std::size_t>(size_));
  allgather<std::int64_t, memory_space::host>(host_span<const std::int64_t>(mine, 3), host_span<std::int64_t>(all));
  for (int r = 0; r < size_; ++r) {
    TERSE_CHECK(all[3 * static_cast<std::size_t>(r)] == kind, errc::mismatch,
                "mpi_transport: rank " + std::to_string(r) +
                    " did not make the same split call as this rank (split and split_shared, or split and allgather)");
  }
  const clock::time_point deadline = begin_call();
  std::vector<std::int64_t> confirmed(static_cast<std::size_t>(size_), 1);
  move_data([&] {
    layout_.uniform(1);
    gather_blocks(confirmed.data(), split_confirm_tag, deadline);
  });
  return all;
}

// Builds the sub-transport on `made` (its constructor duplicates it) and
// frees `made`.
inline mpi_transport mpi_transport::adopt_split(MPI_Comm made)
{
  TERSE_CHECK(made != MPI_COMM_NULL, errc::internal, "mpi_transport: MPI split returned MPI_COMM_NULL");
  struct free_on_exit {
    MPI_Comm& comm;
    ~free_on_exit() { TERSE_MPI_TRY_NOTHROW(MPI_Comm_free(&comm)); }
  } made_guard{made};
  mpi_transport sub(made, options_);
  sub.set_max_chunk_elements(max_chunk_);
  return sub;
}

inline mpi_transport mpi_transport::split(int colour, int key)
{
  const std::vector<std::int64_t> all = agree_on_split(split_by_colour_kind, colour, key);
  // MPI_Comm_split takes colours >= 0 (MPI_UNDEFINED gives no communicator),
  // so colours are renumbered: the distinct non-negative colours become
  // 0 .. k-1 in increasing order, and a rank alone gets k + its rank.
  std::vector<std::int64_t> colours;
  for (int r = 0; r < size_; ++r) {
    const std::int64_t c = all[3 * static_cast<std::size_t>(r) + 1];
    if (c >= 0) {
      colours.push_back(c);
    }
  }
  std::sort(colours.begin(), colours.end());
  colours.erase(std::unique(colours.begin(), colours.end()), colours.end());
  const auto dense = colour >= 0 ? std::lower_bound(colours.begin(), colours.end(), colour) - colours.begin()
                                 : static_cast<std::ptrdiff_t>(colours.size()) + rank_;
  MPI_Comm made = MPI_COMM_NULL;
  move_data([&] { TERSE_MPI_TRY(MPI_Comm_split(collective_comm_, static_cast<int>(dense), key, &made)); });
  return adopt_split(made);
}

inline mpi_transport mpi_transport::split_shared()
{
  (void)agree_on_split(split_shared_kind, 0, rank_);
  MPI_Comm made = MPI_COMM_NULL;
  move_data(
      [&] { TERSE_MPI_TRY(MPI_Comm_split_type(collective_comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &made)); });
  return adopt_split(made);
}

}  // namespace terse

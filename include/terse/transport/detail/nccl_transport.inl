#pragma once
/// @file
/// Out-of-line bodies of terse::nccl_transport: construction, waiting with
/// the deadline, the checked-mode exchanges, split and breaking down.
/// Included by terse/transport/nccl.hpp only. (Over 400 lines: each body
/// is short, and they share the transport's private waiting helpers.)

#include <terse/transport/nccl.hpp>

#include <cstring>
#include <memory>
#include <unistd.h>
#include <vector>

namespace terse {

inline nccl_transport nccl_transport::create(int rank, int size, const ncclUniqueId& id, cudaStream_t stream,
                                             transport_options options)
{
  TERSE_EXPECTS(size >= 1 && rank >= 0 && rank < size,
                "rank " + std::to_string(rank) + " of a world of " + std::to_string(size));
  TERSE_EXPECTS(options.timeout.count() > 0, "the timeout must be positive");
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  const ncclResult_t status = ncclCommInitRankConfig(&comm, size, id, rank, &config);
  if (status != ncclSuccess && status != ncclInProgress) {
    if (comm != nullptr) {
      (void)ncclCommAbort(comm);
    }
    TERSE_FAIL(detail::nccl::classify(status), detail::nccl_message("ncclCommInitRankConfig", status));
  }
  try {
    return nccl_transport(comm, stream, options, true);
  } catch (...) {
    (void)ncclCommAbort(comm);  // the constructor threw, so no destructor will
    throw;
  }
}

inline void nccl_transport::synchronize()
{
  ensure_healthy("synchronize");
  const auto deadline = detail::nccl::clock::now() + options_.timeout;
  detail::nccl::backoff wait;
  for (;;) {
    const cudaError_t status = cudaStreamQuery(stream_);
    if (status != cudaSuccess && status != cudaErrorNotReady) {
      (void)cudaGetLastError();
      break_down(errc::cuda, detail::cuda_message("cudaStreamQuery(stream)", status));
    }
    check_async_error();
    if (status == cudaSuccess) {
      return;
    }
    if (detail::nccl::clock::now() >= deadline) {
      break_down(errc::timeout, "synchronize: the stream did not finish within " +
                                    std::to_string(options_.timeout.count()) +
                                    " ms; a peer may have died or stopped calling");
    }
    wait.pause();
  }
}

inline void nccl_transport::barrier()
{
  if (options_.checked) {
    agree("barrier", describe_call<std::byte>(verb::barrier, 0, reduce_op::sum), {});
    return;  // the checked exchange is itself a synchronised allreduce
  }
  ensure_healthy("barrier");
  submit("barrier", [&] {
    TERSE_NCCL_TRY(ncclAllReduce(scratch_.data(), scratch_.data(), 1, ncclUint64, ncclMax, comm_, stream_));
  });
  synchronize();
}

inline exchange_id nccl_transport::start_exchange(host_span<const outgoing<memory_space::device>> sends,
                                                  host_span<const incoming<memory_space::device>> recvs, int tag)
{
  ensure_healthy("start_exchange");
  TERSE_EXPECTS(tag >= 0, "start_exchange: " + tag_problem(tag));
  for (const auto& message : sends) {
    check_peer("start_exchange", message.peer);
  }
  for (const auto& message : recvs) {
    check_peer("start_exchange", message.peer);
  }
  detail::nccl::exchange_events::slot& slot = exchanges_.take();
  submit("start_exchange", [&] {
    detail::nccl::group_guard group;
    for (const auto& message : sends) {
      if (!message.bytes.empty()) {
        TERSE_NCCL_TRY(ncclSend(message.bytes.data(), message.bytes.size(), ncclUint8, message.peer, comm_, stream_));
      }
    }
    for (const auto& message : recvs) {
      if (!message.bytes.empty()) {
        TERSE_NCCL_TRY(ncclRecv(message.bytes.data(), message.bytes.size(), ncclUint8, message.peer, comm_, stream_));
      }
    }
    group.end();
  });
  // Only now: a non-blocking group may still be enqueuing until submit saw
  // the communicator ready, and the event must follow its kernels.
  if (const cudaError_t status = cudaEventRecord(slot.event, stream_); status != cudaSuccess) {
    (void)cudaGetLastError();
    break_down(errc::cuda, detail::cuda_message("cudaEventRecord(exchange event)", status));
  }
  slot.deadline = detail::nccl::clock::now() + options_.timeout;
  slot.id = exchanges_.next_id();
  return exchange_id{slot.id};
}

inline bool nccl_transport::test(exchange_id id)
{
  detail::nccl::exchange_events::slot* slot = exchanges_.find(id);
  TERSE_CHECK(slot != nullptr, errc::invalid_argument,
              "nccl_transport: exchange " + std::to_string(id.value) +
                  " is not in flight on this transport (unknown, or already spent)");
  slot->id = 0;  // spent unless it is still running below
  ensure_healthy("test");
  const cudaError_t status = cudaEventQuery(slot->event);
  if (status != cudaSuccess && status != cudaErrorNotReady) {
    (void)cudaGetLastError();
    break_down(errc::cuda, detail::cuda_message("cudaEventQuery(exchange event)", status));
  }
  check_async_error();
  if (status == cudaSuccess) {
    return true;
  }
  if (detail::nccl::clock::now() >= slot->deadline) {
    break_down(errc::timeout, "exchange " + std::to_string(id.value) + " did not finish within " +
                                  std::to_string(options_.timeout.count()) +
                                  " ms; a peer may have died or stopped calling");
  }
  slot->id = id.value;
  return false;
}

inline void nccl_transport::wait(exchange_id id)
{
  detail::nccl::backoff pause;
  while (!test(id)) {
    pause.pause();
  }
}

inline nccl_transport::nccl_transport(ncclComm_t comm, cudaStream_t stream, transport_options options, bool owns)
    : comm_(comm), stream_(stream), options_(options)
{
  TERSE_EXPECTS(comm != nullptr, "nccl_transport needs a communicator");
  TERSE_EXPECTS(options.timeout.count() > 0, "the timeout must be positive");
  TERSE_CHECK(options.failures == failure_scope::world, errc::unsupported,
              "nccl_transport: failure_scope::peer is not supported (an NCCL communicator fails as a whole)");
  const auto ready = detail::nccl::wait_until_ready(comm, detail::nccl::clock::now() + options_.timeout);
  if (ready.timed_out) {
    TERSE_FAIL(errc::timeout, "the NCCL communicator was not ready within " + std::to_string(options_.timeout.count()) +
                                  " ms (a rank did not join?)");
  }
  if (ready.state != ncclSuccess) {
    TERSE_FAIL(detail::nccl::classify(ready.state), detail::nccl_message("ncclCommGetAsyncError", ready.state));
  }
  TERSE_NCCL_TRY(ncclCommCount(comm, &size_));
  TERSE_NCCL_TRY(ncclCommUserRank(comm, &rank_));
  int comm_device = 0;
  TERSE_NCCL_TRY(ncclCommCuDevice(comm, &comm_device));
  {
    const detail::nccl::device_guard on_comm_device(comm_device);
    scratch_.reserve(scratch_words);  // the only allocations: verbs reuse these
    staging_.reserve(scratch_words);
    // The barrier reduces a word nobody reads; zero it so memory checkers
    // do not see an uninitialised read.
    TERSE_CUDA_TRY(cudaMemset(scratch_.data(), 0, scratch_words * sizeof(std::uint64_t)));
  }
  owns_ = owns;  // only now: if anything above threw, create() aborts the communicator
}

inline nccl_transport nccl_transport::split(int colour, int key)
{
  detail::call_descriptor call;
  call.what = verb::barrier;
  call.root = -2;  // no verb has this root: a split never agrees with another call
  agree("split", call, {});
  return split_communicator(colour < 0 ? NCCL_SPLIT_NOCOLOR : colour, key);
}

inline nccl_transport nccl_transport::split_shared()
{
  ensure_healthy("split_shared");
  constexpr std::size_t name_bytes = 256;
  std::vector<char> names(name_bytes * static_cast<std::size_t>(size_), '\0');
  char* mine = names.data() + name_bytes * static_cast<std::size_t>(rank_);
  TERSE_CHECK(gethostname(mine, name_bytes - 1) == 0, errc::unsupported,
              "split_shared: gethostname failed, so this rank cannot tell which host it is on");
  int comm_device = 0;
  TERSE_NCCL_TRY(ncclCommCuDevice(comm_, &comm_device));
  device_buffer<std::uint8_t> gathered;
  std::uint8_t* own = nullptr;
  {
    const detail::nccl::device_guard on_comm_device(comm_device);
    gathered.reserve(names.size());
    own = gathered.data() + name_bytes * static_cast<std::size_t>(rank_);
    TERSE_CUDA_TRY(cudaMemcpy(own, mine, name_bytes, cudaMemcpyHostToDevice));
  }
  allgather<std::uint8_t, memory_space::device>(on_device(static_cast<const std::uint8_t*>(own), name_bytes),
                                                on_device(gathered.data(), names.size()));
  synchronize();
  {
    const detail::nccl::device_guard on_comm_device(comm_device);
    TERSE_CUDA_TRY(cudaMemcpy(names.data(), gathered.data(), names.size(), cudaMemcpyDeviceToHost));
  }
  int colour = rank_;  // the lowest rank with this host name
  for (int r = 0; r < rank_; ++r) {
    if (std::memcmp(names.data() + name_bytes * static_cast<std::size_t>(r), mine, name_bytes) == 0) {
      colour = r;
      break;
    }
  }
  return split_communicator(colour, rank_);
}

inline nccl_transport nccl_transport::split_communicator(int colour, int key)
{
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 18, 0)
  int comm_device = 0;
  TERSE_NCCL_TRY(ncclCommCuDevice(comm_, &comm_device));
  const detail::nccl::device_guard on_comm_device(comm_device);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  // NCCL writes the new handle when the split completes, which on a
  // non-blocking communicator is after ncclCommSplit returns: the handle
  // lives on the heap and is left to NCCL if the split does not finish.
  auto made = std::make_unique<ncclComm_t>(nullptr);
  const ncclResult_t status = ncclCommSplit(comm_, colour, key, made.get(), &config);
  if (status != ncclSuccess && status != ncclInProgress) {
    break_down(detail::nccl::classify(status), "split: " + detail::nccl_message("ncclCommSplit", status));
  }
  // The split runs as a job of this communicator, which stays ncclInProgress
  // until it is done.
  const auto ready = detail::nccl::wait_until_ready(comm_, detail::nccl::clock::now() + options_.timeout);
  if (ready.timed_out) {
    (void)made.release();
    break_down(errc::timeout,
               "split: not every rank joined ncclCommSplit within " + std::to_string(options_.timeout.count()) + " ms");
  }
  if (ready.state != ncclSuccess) {
    if (*made != nullptr) {
      (void)ncclCommAbort(*made);
    }
    break_down(detail::nccl::classify(ready.state),
               "split: " + detail::nccl_message("ncclCommSplit (asynchronous)", ready.state));
  }
  if (colour == NCCL_SPLIT_NOCOLOR) {
    ncclUniqueId id;
    TERSE_NCCL_TRY(ncclGetUniqueId(&id));
    return create(0, 1, id, stream_, options_);
  }
  const ncclComm_t child = *made;
  TERSE_CHECK(child != nullptr, errc::internal, "split: ncclCommSplit finished without a communicator");
  try {
    return nccl_transport(child, stream_, options_, true);
  } catch (...) {
    (void)ncclCommAbort(child);  // the constructor threw, so no destructor will
    throw;
  }
#else
  (void)colour;
  (void)key;
  TERSE_FAIL(errc::unsupported, "nccl_transport::split needs NCCL 2.18 or newer (ncclCommSplit)");
#endif
}

inline void nccl_transport::check_peer(const char* name, int peer) const
{
  ensure_healthy(name);
  // No fingerprint can reach a rank that does not exist, so this one is
  // local only.
  TERSE_EXPECTS(peer >= 0 && peer < size_, std::string(name) + ": peer " + std::to_string(peer) +
                                               " is not a rank of a world of " + std::to_string(size_));
}

inline void nccl_transport::ensure_healthy(const char* name) const
{
  TERSE_CHECK(healthy(), errc::peer_failed,
              std::string(name) +
                  ": this nccl_transport is broken by an earlier timeout or peer failure; "
                  "build a new one");
}

inline void nccl_transport::agree(const char* name, detail::call_descriptor call, const std::string& problem)
{
  ensure_healthy(name);
  if (!options_.checked) {
    TERSE_CHECK(problem.empty(), errc::invalid_argument, problem);
    return;
  }
  const std::uint64_t fp = with_validity(call.fingerprint(), problem.empty());
  std::uint64_t* words = staging_.data();
  words[0] = fp;
  words[1] = ~fp;
  submit(name, [&] {
    TERSE_CUDA_TRY(cudaMemcpyAsync(scratch_.data(), words, 2 * sizeof(std::uint64_t), cudaMemcpyHostToDevice, stream_));
    TERSE_NCCL_TRY(ncclAllReduce(scratch_.data(), scratch_.data(), 2, ncclUint64, ncclMax, comm_, stream_));
    TERSE_CUDA_TRY(cudaMemcpyAsync(words, scratch_.data(), 2 * sizeof(std::uint64_t), cudaMemcpyDeviceToHost, stream_));
  });
  synchronize();
  TERSE_CHECK(problem.empty(), errc::invalid_argument, problem);
  TERSE_CHECK(words[0] == fp && ~words[1] == fp, errc::mismatch,
              std::string(name) +
                  ": the ranks made different calls (verb, element type, count, operator or "
                  "root differ, or another rank's arguments were invalid): " +
                  detail::describe(call) + " here");
}

inline void nccl_transport::agree_with_peers(const char* name, std::uint64_t out, int dest, std::uint64_t in,
                                             int source, const std::string& problem)
{
  if (!options_.checked) {
    TERSE_CHECK(problem.empty(), errc::invalid_argument, problem);
    return;
  }
  std::uint64_t* words = staging_.data();
  words[0] = with_validity(out, problem.empty());
  words[1] = with_validity(in, problem.empty());
  std::uint64_t* slots = scratch_.data();
  submit(name, [&] {
    TERSE_CUDA_TRY(cudaMemcpyAsync(slots, words, 2 * sizeof(std::uint64_t), cudaMemcpyHostToDevice, stream_));
    detail::nccl::group_guard group;
    // Sends in the order (to dest, to source) and receives in the order
    // (from source, from dest), so when dest == source the n-th message
    // each way pairs up.
    if (dest >= 0) {
      TERSE_NCCL_TRY(ncclSend(slots, 1, ncclUint64, dest, comm_, stream_));
    }
    if (source >= 0) {
      TERSE_NCCL_TRY(ncclSend(slots + 1, 1, ncclUint64, source, comm_, stream_));
      TERSE_NCCL_TRY(ncclRecv(slots + 2, 1, ncclUint64, source, comm_, stream_));
    }
    if (dest >= 0) {
      TERSE_NCCL_TRY(ncclRecv(slots + 3, 1, ncclUint64, dest, comm_, stream_));
    }
    group.end();
    TERSE_CUDA_TRY(cudaMemcpyAsync(words + 2, slots + 2, 2 * sizeof(std::uint64_t), cudaMemcpyDeviceToHost, stream_));
  });
  synchronize();
  TERSE_CHECK(problem.empty(), errc::invalid_argument, problem);
  const bool dest_agrees = dest < 0 || words[3] == words[0];
  const bool source_agrees = source < 0 || words[2] == words[1];
  TERSE_CHECK(dest_agrees && source_agrees, errc::mismatch,
              std::string(name) +
                  ": the peer expects a different message (element type, count, tag or "
                  "direction differ, or its arguments were invalid)");
}

template <class Enqueue>
inline void nccl_transport::submit(const char* name, Enqueue&& enqueue)
{
  ensure_healthy(name);
  try {
    enqueue();
  } catch (const error&) {
    break_quietly();
    throw;
  }
  const auto ready = detail::nccl::wait_until_ready(comm_, detail::nccl::clock::now() + options_.timeout);
  if (ready.timed_out) {
    break_down(errc::timeout, std::string(name) + ": NCCL did not take the call within " +
                                  std::to_string(options_.timeout.count()) + " ms");
  }
  if (ready.state != ncclSuccess) {
    break_down(detail::nccl::classify(ready.state),
               std::string(name) + ": " + detail::nccl_message("ncclCommGetAsyncError", ready.state));
  }
}

inline void nccl_transport::check_async_error()
{
  ncclResult_t state = ncclSuccess;
  const ncclResult_t status = ncclCommGetAsyncError(comm_, &state);
  if (status != ncclSuccess) {
    break_down(detail::nccl::classify(status), detail::nccl_message("ncclCommGetAsyncError", status));
  }
  if (state != ncclSuccess && state != ncclInProgress) {
    break_down(detail::nccl::classify(state), detail::nccl_message("an earlier NCCL call (asynchronous)", state));
  }
}

inline void nccl_transport::break_down(errc code, const std::string& message)
{
  break_quietly();
  TERSE_FAIL(code, message + (owns_ ? "; the communicator was aborted" : "; abort the communicator (ncclCommAbort)") +
                       ", build a new transport to go on");
}

inline void nccl_transport::break_quietly() noexcept
{
  broken_ = true;
  if (owns_ && comm_ != nullptr) {
    (void)ncclCommAbort(comm_);
    comm_ = nullptr;
  }
}

inline void nccl_transport::release() noexcept
{
  if (comm_ == nullptr || !owns_) {
    comm_ = nullptr;
    return;
  }
  const ncclResult_t finalize = broken_ ? ncclInternalError : ncclCommFinalize(comm_);
  if (finalize == ncclSuccess || finalize == ncclInProgress) {
    const auto done = detail::nccl::wait_until_ready(comm_, detail::nccl::clock::now() + options_.timeout);
    if (!done.timed_out && done.state == ncclSuccess) {
      TERSE_NCCL_TRY_NOTHROW(ncclCommDestroy(comm_));
      comm_ = nullptr;
      return;
    }
  }
  (void)ncclCommAbort(comm_);
  comm_ = nullptr;
}

}  // namespace terse

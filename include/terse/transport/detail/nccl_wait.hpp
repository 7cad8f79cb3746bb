#pragma once
/// @file
/// Waiting with a deadline on a non-blocking NCCL communicator: poll its
/// state instead of blocking inside NCCL, so a dead peer becomes a timeout.

#include <terse/core/error.hpp>

#include <nccl.h>

#include <chrono>
#include <thread>

namespace terse::detail::nccl {

using clock = std::chrono::steady_clock;

/// Spins briefly (a collective on one node finishes in microseconds), then
/// sleeps in short steps so a long wait does not burn a core.
class backoff {
 public:
  void pause() noexcept
  {
    if (spins_ < 64) {
      ++spins_;
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

 private:
  int spins_ = 0;
};

/// How a wait ended.
struct wait_result {
  ncclResult_t state = ncclSuccess;  ///< the communicator's last state
  bool timed_out = false;
};

/// Polls ncclCommGetAsyncError until the communicator leaves ncclInProgress
/// (a non-blocking init, enqueue or finalize has finished) or `deadline`
/// passes. Never throws.
inline wait_result wait_until_ready(ncclComm_t comm, clock::time_point deadline) noexcept
{
  backoff wait;
  for (;;) {
    ncclResult_t state = ncclSuccess;
    if (const ncclResult_t status = ncclCommGetAsyncError(comm, &state); status != ncclSuccess) {
      return {status, false};
    }
    if (state != ncclInProgress) {
      return {state, false};
    }
    if (clock::now() >= deadline) {
      return {state, true};
    }
    wait.pause();
  }
}

/// The terse error code for an NCCL failure: the ones that mean another rank
/// or the network went away are peer failures; the rest are NCCL errors.
constexpr errc classify(ncclResult_t status) noexcept
{
  return status == ncclRemoteError || status == ncclSystemError ? errc::peer_failed : errc::nccl;
}

}  // namespace terse::detail::nccl

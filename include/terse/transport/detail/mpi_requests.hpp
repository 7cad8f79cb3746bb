#pragma once
/// @file
/// The waiting half of the MPI transport: the nonblocking requests of one
/// call, polled against a deadline with a backoff that leaves the core to
/// other ranks, and the requests a failed call leaves behind.

#include <terse/core/error.hpp>
#include <terse/core/mpi_error.hpp>
#include <terse/transport/detail/mpi_clock.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace terse::detail::mpi {

/// now + timeout, capped so a huge timeout cannot overflow the clock.
inline clock::time_point deadline_after(std::chrono::milliseconds timeout) noexcept
{
  constexpr std::chrono::milliseconds year = std::chrono::hours(24 * 365);
  return clock::now() + std::clamp(timeout, std::chrono::milliseconds(0), year);
}

/// Spin briefly (latency), then yield, then sleep up to 1 ms: ranks often
/// outnumber cores, and a rank that spins starves the peer it waits for.
/// Under SMPI every simulated rank has its own host and each MPI_Test
/// already hands over to the other ranks, so there is no yield, and the
/// (simulated) sleep stays at 16 us: below one link latency of the shipped
/// platforms, yet 16 times fewer polls to simulate during a long wait.
class poll_backoff {
 public:
  void pause() noexcept
  {
    if constexpr (is_smpi) {
      if (++polls_ >= 256) {
        std::this_thread::sleep_for(std::chrono::microseconds(16));
      }
      return;
    }
    ++polls_;
    if (polls_ < 16) {
      return;
    }
    if (polls_ < 256) {
      std::this_thread::yield();
      return;
    }
    const unsigned shift = std::min(6u, (polls_ - 256) / 32);
    std::this_thread::sleep_for(std::chrono::microseconds(16u << shift));
  }

 private:
  unsigned polls_ = 0;
};

enum class request_kind : std::uint8_t {
  send,
  receive,
  collective,  ///< cannot be cancelled or freed: MPI must finish it
};

/// Requests that a failed call could not finish. They are kept so a late
/// peer can still complete them, and the transport's destructor waits for
/// them (bounded) before it frees anything they may touch.
class abandoned_requests {
 public:
  void take(MPI_Request request, request_kind kind)
  {
    requests_.push_back(request);
    kinds_.push_back(kind);
  }

  bool empty() const noexcept { return requests_.empty(); }

  /// Tests until every request is complete or `deadline` passes; true when
  /// none is left. A request that completes with an error counts as done.
  bool drain(clock::time_point deadline) noexcept
  {
    poll_backoff backoff;
    while (true) {
      std::size_t kept = 0;
      for (std::size_t i = 0; i < requests_.size(); ++i) {
        int done = 0;
        if (MPI_Test(&requests_[i], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
          done = 1;
        }
        if (done == 0) {
          requests_[kept] = requests_[i];
          kinds_[kept] = kinds_[i];
          ++kept;
        }
      }
      requests_.resize(kept);
      kinds_.resize(kept);
      if (kept == 0) {
        return true;
      }
      if (clock::now() >= deadline) {
        return false;
      }
      backoff.pause();
    }
  }

  struct leftovers {
    bool buffers_in_use = false;      ///< MPI may still touch buffers of these requests
    bool collective_pending = false;  ///< the communicator must not be freed
  };

  /// Frees the point-to-point requests still pending (MPI finishes them on
  /// its own); collective ones cannot be freed and are left behind.
  leftovers release() noexcept
  {
    leftovers left;
    for (std::size_t i = 0; i < requests_.size(); ++i) {
      left.buffers_in_use = true;
      if (kinds_[i] == request_kind::collective) {
        left.collective_pending = true;
      } else {
        TERSE_MPI_TRY_NOTHROW(MPI_Request_free(&requests_[i]));
      }
    }
    requests_.clear();
    kinds_.clear();
    return left;
  }

 private:
  std::vector<MPI_Request> requests_;
  std::vector<request_kind> kinds_;
};

/// The requests of one call. Vectors keep their capacity, so a steady
/// stream of calls does not allocate.
class request_set {
 public:
  /// Tracks `request`. For a receive, `expected` elements of `type` are
  /// checked when it completes, so a short message is a mismatch, not
  /// silently stale data.
  void add(MPI_Request request, request_kind kind, int peer, MPI_Datatype type = MPI_DATATYPE_NULL, int expected = -1)
  {
    requests_.push_back(request);
    kinds_.push_back(kind);
    peers_.push_back(peer);
    types_.push_back(type);
    expected_.push_back(expected);
  }

  bool empty() const noexcept { return requests_.empty(); }
  std::size_t size() const noexcept { return requests_.size(); }

  /// Tests every pending request once; true, and the set is emptied, when
  /// all have completed. Throws errc::mpi when MPI reports an error and,
  /// once every request has completed, errc::mismatch when a receive got a
  /// different number of elements.
  ///
  /// Each request is tested on its own and its count checked as it
  /// completes: a partial MPI_Testall may free the requests that did
  /// complete (SimGrid's SMPI does), losing the statuses a later call would
  /// have to report.
  bool test_all()
  {
    bool pending = false;
    for (std::size_t i = 0; i < requests_.size(); ++i) {
      if (requests_[i] == MPI_REQUEST_NULL) {
        continue;  // completed in an earlier call
      }
      int done = 0;
      MPI_Status status;
      status.MPI_ERROR = MPI_SUCCESS;
      const int rc = MPI_Test(&requests_[i], &done, &status);
      if (rc != MPI_SUCCESS) [[unlikely]] {
        fail(rc, peers_[i]);
      }
      if (done == 0) {
        pending = true;
        continue;
      }
      requests_[i] = MPI_REQUEST_NULL;  // MPI_Test freed it
      // SMPI returns MPI_SUCCESS for a message longer than its receive and
      // says MPI_ERR_TRUNCATE only in the status (other MPIs leave it alone).
      if (status.MPI_ERROR != MPI_SUCCESS && kinds_[i] == request_kind::receive) [[unlikely]] {
        fail(status.MPI_ERROR, peers_[i]);
      }
      if (expected_[i] >= 0 && first_wrong_.empty()) {
        int got = 0;
        TERSE_MPI_TRY(MPI_Get_count(&status, types_[i], &got));
        if (got != expected_[i]) [[unlikely]] {
          first_wrong_ = "a message from rank " + std::to_string(peers_[i]) + " held " +
                         (got == MPI_UNDEFINED ? std::string("a partial element") : std::to_string(got)) +
                         " elements where " + std::to_string(expected_[i]) +
                         " were expected (ranks disagree on the call)";
        }
      }
    }
    if (pending) {
      return false;
    }
    std::string wrong = std::move(first_wrong_);
    clear();
    if (!wrong.empty()) [[unlikely]] {
      TERSE_FAIL(errc::mismatch, std::move(wrong));
    }
    return true;
  }

  /// Who the pending requests wait on, for a timeout message.
  std::string describe_pending() const
  {
    std::string ranks;
    bool collective = false;
    for (std::size_t i = 0; i < requests_.size(); ++i) {
      if (requests_[i] == MPI_REQUEST_NULL) {
        continue;
      }
      int done = 0;
      MPI_Status status;
      MPI_Request copy = requests_[i];
      // MPI_Request_get_status tests without freeing, so the set is unchanged.
      if (MPI_Request_get_status(copy, &done, &status) == MPI_SUCCESS && done != 0) {
        continue;
      }
      if (kinds_[i] == request_kind::collective) {
        collective = true;
        continue;
      }
      const std::string name = std::to_string(peers_[i]);
      if (ranks.find(" " + name + ",") == std::string::npos) {
        ranks += " " + name + ",";
      }
    }
    std::string text;
    if (!ranks.empty()) {
      ranks.pop_back();
      text = "rank" + ranks;
    }
    if (collective) {
      text += text.empty() ? "some rank (a collective step)" : " and a collective step";
    }
    return text.empty() ? std::string("a peer") : text;
  }

  /// Cancels pending receives (so a late message cannot land in a buffer
  /// the caller may free) and hands every unfinished request to `graveyard`.
  void abandon_into(abandoned_requests& graveyard) noexcept
  {
    for (std::size_t i = 0; i < requests_.size(); ++i) {
      if (requests_[i] == MPI_REQUEST_NULL) {
        continue;
      }
      if (kinds_[i] == request_kind::receive) {
        (void)MPI_Cancel(&requests_[i]);
        int done = 0;
        if (MPI_Test(&requests_[i], &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done != 0) {
          continue;
        }
      }
      try {
        graveyard.take(requests_[i], kinds_[i]);
      } catch (...) {
        // Out of memory while failing: MPI keeps the request; we lose track of it.
      }
    }
    clear();
  }

 private:
  [[noreturn]] static void fail(int code, int peer)
  {
    int error_class = code;
    (void)MPI_Error_class(code, &error_class);
    std::string text = mpi_message("MPI_Test", code);
    if (peer >= 0) {
      text += " on a message with rank " + std::to_string(peer);
    }
    errc kind = error_class == MPI_ERR_TRUNCATE ? errc::mismatch : errc::mpi;
#if defined(MPIX_ERR_PROC_FAILED)
    if (error_class == MPIX_ERR_PROC_FAILED) {
      kind = errc::peer_failed;  // an MPI with fault tolerance (ULFM) names the dead peer
    }
#endif
    TERSE_FAIL(kind, text);
  }

  void clear() noexcept
  {
    requests_.clear();
    kinds_.clear();
    peers_.clear();
    types_.clear();
    expected_.clear();
    first_wrong_.clear();
  }

  std::vector<MPI_Request> requests_;
  std::vector<request_kind> kinds_;
  std::vector<int> peers_;
  std::vector<MPI_Datatype> types_;
  std::vector<int> expected_;
  std::string first_wrong_;  ///< the first receive whose count was wrong
};

}  // namespace terse::detail::mpi

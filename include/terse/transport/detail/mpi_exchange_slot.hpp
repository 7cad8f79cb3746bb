#pragma once
/// @file
/// One grouped exchange of the MPI transport (core/exchange.hpp): every
/// message of an exchange is posted at once on the point-to-point
/// communicator, chunked and (in checked mode) headed exactly like
/// send/recv (mpi_p2p.hpp), and progressed by polling.
///
/// Each request is tested on its own with MPI_Test and its completion kept
/// here: a partial MPI_Testall may free the completed requests on some MPIs
/// (SimGrid's SMPI), which would lose their statuses. Nothing needs threads,
/// so MPI_THREAD_SINGLE is enough.
///
/// Over 400 lines: posting, polling, mismatch draining and abandonment of
/// one exchange share its request bookkeeping; split, each part would
/// expose that bookkeeping to the others.
///
/// Checked mode: a receive first takes the sender's header, then posts the
/// body, so two messages from one peer in one exchange are received one
/// after the other (the second header is posted after the first body, and
/// MPI matches receives in posting order). A message whose header disagrees
/// is drained into scratch memory, one chunk at a time, and reported as a
/// mismatch once the exchange has completed. Unchecked mode posts every
/// chunk at once and compares the received sizes.

#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/mpi_error.hpp>
#include <terse/core/span.hpp>
#include <terse/transport/detail/mpi_datatype.hpp>
#include <terse/transport/detail/mpi_p2p.hpp>
#include <terse/transport/detail/mpi_requests.hpp>
#include <terse/transport/detail/mpi_scratch.hpp>

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace terse::detail::mpi {

/// One MPI request of an exchange.
struct exchange_request {
  MPI_Request request = MPI_REQUEST_NULL;
  int owner = -1;  ///< the receive it serves (index into `receives`); -1: a send
  int peer = 0;
  int expected = -1;  ///< bytes it must hold when it completes; -1: unchecked
  bool done = false;
};

/// One receive of an exchange.
struct exchange_receive {
  enum class stage : std::uint8_t { queued, header, body, drain_queued, drain, done };

  std::byte* data = nullptr;
  std::size_t size = 0;
  int peer = 0;
  int previous = -1;  ///< the receive before it from the same peer, or -1
  stage at = stage::queued;
  int outstanding = 0;  ///< its requests still pending
  MPI_Datatype drain_type = MPI_BYTE;
  std::size_t drain_element = 1;
  std::size_t drain_left = 0;
  std::size_t drain_chunk = 1;
  std::size_t drain_messages = 0;
};

/// An exchange in flight. Slots are recycled and their vectors keep their
/// capacity, so exchanges of a shape seen before allocate nothing.
struct exchange_slot {
  std::uint64_t id = 0;  ///< 0: free
  bool abandoned = false;
  int tag = 0;
  MPI_Comm comm = MPI_COMM_NULL;
  std::size_t chunk = 1;
  bool checked = false;
  clock::time_point deadline{};
  std::vector<exchange_request> requests;
  std::vector<exchange_receive> receives;
  std::vector<std::uint64_t> headers;  ///< header_words per send, then per receive
  std::vector<int> last_from;          ///< per peer: its latest receive while posting
  scratch_buffer drain;                ///< one drain at a time per exchange
  bool draining = false;
  std::string mismatch;  ///< the first message that did not fit its receive

  /// Posts every send and receive of the exchange.
  void start(host_span<const outgoing<>> sends, host_span<const incoming<>> recvs, int world)
  {
    abandoned = false;
    draining = false;
    mismatch.clear();
    requests.clear();
    receives.clear();
    // Sized before anything is posted: MPI holds pointers into it.
    headers.assign(checked ? header_words * (sends.size() + recvs.size()) : 0, 0);
    last_from.assign(static_cast<std::size_t>(world), -1);
    for (const incoming<>& message : recvs) {
      exchange_receive receive;
      receive.data = message.bytes.data();
      receive.size = message.bytes.size();
      receive.peer = message.peer;
      receive.previous = last_from[static_cast<std::size_t>(message.peer)];
      last_from[static_cast<std::size_t>(message.peer)] = static_cast<int>(receives.size());
      receives.push_back(receive);
    }
    for (std::size_t i = 0; i < sends.size(); ++i) {
      post_send(sends[i], checked ? headers.data() + header_words * i : nullptr);
    }
    for (std::size_t j = 0; j < receives.size(); ++j) {
      if (!checked) {
        post_body(j);
      }
    }
    post_ready_headers();
  }

  /// Makes what progress it can without blocking; true once every message
  /// has completed (a mismatched one drained). Throws errc::mpi on an MPI
  /// error and errc::malformed_payload on a message without a header.
  bool advance()
  {
    bool pending = false;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (requests[i].done) {
        continue;
      }
      int flag = 0;
      MPI_Status status;
      status.MPI_ERROR = MPI_SUCCESS;
      const int rc = MPI_Test(&requests[i].request, &flag, &status);
      // SMPI returns MPI_SUCCESS for a message longer than its receive and
      // says MPI_ERR_TRUNCATE only in the status (other MPIs leave it alone).
      bool truncated = rc == MPI_SUCCESS && flag != 0 && requests[i].owner >= 0 && is_truncation(status.MPI_ERROR);
      if (rc != MPI_SUCCESS) {
        int error_class = rc;
        (void)MPI_Error_class(rc, &error_class);
        if (error_class != MPI_ERR_TRUNCATE || requests[i].owner < 0) {
          fail(rc, requests[i].peer);
        }
        // A message longer than its receive: consumed, and a mismatch.
        if (requests[i].request != MPI_REQUEST_NULL) {
          (void)MPI_Request_free(&requests[i].request);
        }
        truncated = true;
        flag = 1;
      }
      if (flag == 0) {
        pending = true;
        continue;
      }
      requests[i].done = true;
      requests[i].request = MPI_REQUEST_NULL;
      const int owner = requests[i].owner;
      if (owner < 0) {
        continue;
      }
      int got = requests[i].expected;
      if (!truncated && requests[i].expected >= 0) {
        TERSE_MPI_TRY(MPI_Get_count(&status, MPI_BYTE, &got));
      }
      if (truncated || got != requests[i].expected) {
        on_wrong_size(static_cast<std::size_t>(owner), truncated, got, requests[i].expected);
      }
      if (--receives[static_cast<std::size_t>(owner)].outstanding == 0) {
        on_receive_step(static_cast<std::size_t>(owner));
        pending = true;  // it may have posted more
      }
    }
    post_ready_headers();
    start_next_drain();
    if (pending) {
      return false;
    }
    for (const exchange_request& r : requests) {
      if (!r.done) {
        return false;
      }
    }
    for (const exchange_receive& r : receives) {
      if (r.at != exchange_receive::stage::done) {
        return false;
      }
    }
    return true;
  }

  /// Who the exchange still waits on, for a timeout message.
  std::string describe_pending() const
  {
    std::string ranks;
    const auto add = [&](int peer, const char* what) {
      // Appended piecewise: GCC 12 at -O3 warns (-Wrestrict, a false
      // positive) on `" " + std::to_string(...)`.
      std::string name(1, ' ');
      name += std::to_string(peer);
      name += what;
      if (ranks.find(name) == std::string::npos) {
        ranks += name;
      }
    };
    for (const exchange_request& r : requests) {
      if (!r.done && r.owner < 0) {
        add(r.peer, " (receiving),");
      }
    }
    for (const exchange_receive& r : receives) {
      if (r.at != exchange_receive::stage::done) {
        add(r.peer, " (sending),");
      }
    }
    if (ranks.empty()) {
      return "a peer";
    }
    ranks.pop_back();
    return "rank" + ranks;
  }

  /// Cancels the pending receives and hands every unfinished request to
  /// `graveyard`; the slot stays taken (its id is reported as failed).
  void abandon_into(abandoned_requests& graveyard) noexcept
  {
    for (exchange_request& r : requests) {
      if (r.done || r.request == MPI_REQUEST_NULL) {
        continue;
      }
      if (r.owner >= 0) {
        (void)MPI_Cancel(&r.request);
        int done = 0;
        if (MPI_Test(&r.request, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done != 0) {
          r.done = true;
          continue;
        }
      }
      try {
        graveyard.take(r.request, r.owner >= 0 ? request_kind::receive : request_kind::send);
      } catch (...) {
        // Out of memory while failing: MPI keeps the request; we lose track of it.
      }
      r.done = true;
    }
    requests.clear();
    abandoned = true;
  }

 private:
  void add(MPI_Request request, int owner, int peer, int expected)
  {
    requests.push_back(exchange_request{request, owner, peer, expected, false});
    if (owner >= 0) {
      ++receives[static_cast<std::size_t>(owner)].outstanding;
    }
  }

  std::size_t length_of(std::size_t count, std::size_t k) const noexcept
  {
    const std::size_t offset = k * chunk;
    return count - offset < chunk ? count - offset : chunk;
  }

  void post_send(const outgoing<>& message, std::uint64_t* header)
  {
    MPI_Request request = MPI_REQUEST_NULL;
    const std::size_t count = message.bytes.size();
    if (header != nullptr) {
      header[0] = (header_magic << 8) | static_cast<std::uint64_t>(data_type::u8);
      header[1] = count;
      header[2] = chunk;
      TERSE_MPI_TRY(MPI_Isend(header, header_words, MPI_UINT64_T, message.peer, tag, comm, &request));
      add(request, -1, message.peer, -1);
    }
    for (std::size_t k = 0; k < message_count(count, chunk); ++k) {
      TERSE_MPI_TRY(MPI_Isend(message.bytes.data() + k * chunk, static_cast<int>(length_of(count, k)), MPI_BYTE,
                              message.peer, tag, comm, &request));
      add(request, -1, message.peer, -1);
    }
  }

  void post_body(std::size_t j)
  {
    exchange_receive& r = receives[j];
    r.at = exchange_receive::stage::body;
    for (std::size_t k = 0; k < message_count(r.size, chunk); ++k) {
      const int length = static_cast<int>(length_of(r.size, k));
      MPI_Request request = MPI_REQUEST_NULL;
      TERSE_MPI_TRY(MPI_Irecv(r.data + k * chunk, length, MPI_BYTE, r.peer, tag, comm, &request));
      add(request, static_cast<int>(j), r.peer, length);
    }
  }

  // A receive may take its header once the receive before it from the same
  // peer has posted its whole body (or finished draining).
  void post_ready_headers()
  {
    for (std::size_t j = 0; j < receives.size(); ++j) {
      exchange_receive& r = receives[j];
      if (r.at != exchange_receive::stage::queued) {
        continue;
      }
      if (r.previous >= 0) {
        const auto before = receives[static_cast<std::size_t>(r.previous)].at;
        if (before != exchange_receive::stage::body && before != exchange_receive::stage::done) {
          continue;
        }
      }
      std::uint64_t* header = headers.data() + headers.size() - header_words * (receives.size() - j);
      MPI_Request request = MPI_REQUEST_NULL;
      TERSE_MPI_TRY(MPI_Irecv(header, header_words, MPI_UINT64_T, r.peer, tag, comm, &request));
      r.at = exchange_receive::stage::header;
      add(request, static_cast<int>(j), r.peer, static_cast<int>(header_words * sizeof(std::uint64_t)));
    }
  }

  void on_wrong_size(std::size_t j, bool truncated, int got, int expected)
  {
    const exchange_receive& r = receives[j];
    if (r.at == exchange_receive::stage::header) {
      TERSE_FAIL(errc::malformed_payload, "a message from rank " + std::to_string(r.peer) +
                                              " does not start with a terse header (are all ranks in checked mode?)");
    }
    if (mismatch.empty()) {
      mismatch = "rank " + std::to_string(r.peer) + " sent a message chunk of " +
                 (truncated ? std::string("more than ") + std::to_string(expected) : std::to_string(got)) +
                 " bytes where " + std::to_string(expected) + " were expected (an exchange receive of " +
                 std::to_string(r.size) + " bytes on tag " + std::to_string(tag) + ")";
    }
  }

  // Every request of one step of receive j has completed.
  void on_receive_step(std::size_t j)
  {
    exchange_receive& r = receives[j];
    switch (r.at) {
      case exchange_receive::stage::header: on_header(j); return;
      case exchange_receive::stage::body: r.at = exchange_receive::stage::done; return;
      case exchange_receive::stage::drain:
        if (r.drain_messages != 0) {
          post_drain_chunk(j);
        } else {
          r.at = exchange_receive::stage::done;
          draining = false;
        }
        return;
      default: return;
    }
  }

  void on_header(std::size_t j)
  {
    exchange_receive& r = receives[j];
    const std::uint64_t* header = headers.data() + headers.size() - header_words * (receives.size() - j);
    const std::uint64_t sender_type = header[0] & 0xffu;
    const std::uint64_t count = header[1];
    const std::uint64_t sender_chunk = header[2];
    if ((header[0] >> 8) != header_magic || !is_data_type(sender_type) || sender_chunk == 0 ||
        sender_chunk > 0x7fffffffu) {
      TERSE_FAIL(errc::malformed_payload, "a message from rank " + std::to_string(r.peer) +
                                              " does not start with a terse header (are all ranks in checked mode?)");
    }
    const auto type = static_cast<data_type>(sender_type);
    if (type == data_type::u8 && count == r.size && sender_chunk == chunk) {
      post_body(j);
      return;
    }
    if (mismatch.empty()) {
      mismatch = "rank " + std::to_string(r.peer) + " sent " + std::to_string(count) + " " +
                 std::string(name_of(type)) + " elements (in chunks of " + std::to_string(sender_chunk) +
                 ") where an exchange receive of " + std::to_string(r.size) + " bytes (chunks of " +
                 std::to_string(chunk) + ") was posted on tag " + std::to_string(tag);
    }
    r.drain_type = datatype_of(type);
    r.drain_element = size_of(type);
    r.drain_left = count;
    r.drain_chunk = sender_chunk;
    r.drain_messages = message_count(count, sender_chunk);
    r.at = exchange_receive::stage::drain_queued;
  }

  void start_next_drain()
  {
    if (draining) {
      return;
    }
    for (std::size_t j = 0; j < receives.size(); ++j) {
      if (receives[j].at == exchange_receive::stage::drain_queued) {
        receives[j].at = exchange_receive::stage::drain;
        draining = true;
        post_drain_chunk(j);
        return;
      }
    }
  }

  // The sender's chunks, one at a time into scratch memory, then dropped.
  void post_drain_chunk(std::size_t j)
  {
    exchange_receive& r = receives[j];
    const std::size_t length = r.drain_left < r.drain_chunk ? r.drain_left : r.drain_chunk;
    std::byte* sink = drain.reserve(length * r.drain_element + 1);
    MPI_Request request = MPI_REQUEST_NULL;
    TERSE_MPI_TRY(MPI_Irecv(sink, static_cast<int>(length), r.drain_type, r.peer, tag, comm, &request));
    add(request, static_cast<int>(j), r.peer, -1);
    r.drain_left -= length;
    --r.drain_messages;
  }

  static bool is_truncation(int code) noexcept
  {
    if (code == MPI_SUCCESS) {
      return false;
    }
    int error_class = code;
    (void)MPI_Error_class(code, &error_class);
    return error_class == MPI_ERR_TRUNCATE;
  }

  [[noreturn]] static void fail(int rc, int peer)
  {
    int error_class = rc;
    (void)MPI_Error_class(rc, &error_class);
    errc kind = errc::mpi;
#if defined(MPIX_ERR_PROC_FAILED)
    if (error_class == MPIX_ERR_PROC_FAILED) {
      kind = errc::peer_failed;
    }
#endif
    TERSE_FAIL(kind, mpi_message("MPI_Test", rc) + " on an exchange message with rank " + std::to_string(peer));
  }
};

}  // namespace terse::detail::mpi

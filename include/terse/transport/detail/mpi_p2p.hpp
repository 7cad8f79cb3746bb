#pragma once
/// @file
/// Point-to-point messages of the MPI transport. A buffer of n elements
/// travels as max(1, ceil(n / chunk)) MPI messages on the caller's (peer,
/// tag); MPI keeps messages of one (source, tag) in order, so the receiver
/// reassembles them in place.
///
/// Checked mode sends a three-word header first (magic and element type,
/// count, chunk). A receiver whose own call disagrees drains the sender's
/// messages into scratch memory and raises errc::mismatch: the sender's
/// call completes normally (it is not told), nobody waits forever, and the
/// next message on that (peer, tag) starts clean.
///
/// Unchecked mode has no header: the receiver probes each message and
/// compares its size before receiving it. A mismatch is caught exactly when
/// both sides agree on the number of messages (always so below the chunk
/// limit); beyond it, leftover chunks of a longer send may remain queued.

#include <terse/core/error.hpp>
#include <terse/core/mpi_error.hpp>
#include <terse/core/verbs.hpp>
#include <terse/transport/detail/mpi_datatype.hpp>
#include <terse/transport/detail/mpi_requests.hpp>
#include <terse/transport/detail/mpi_scratch.hpp>

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace terse::detail::mpi {

inline constexpr std::uint64_t header_magic = 0x7465727365ull;  // "terse"
inline constexpr int header_words = 3;

/// How many MPI messages carry `count` elements: at least one, so a
/// zero-length send still matches its receive.
constexpr std::size_t message_count(std::size_t count, std::size_t chunk) noexcept
{
  return count == 0 ? 1 : (count + chunk - 1) / chunk;
}

/// What the sender of a point-to-point message is.
struct outgoing_message {
  const void* data = nullptr;
  std::size_t count = 0;
  std::size_t element_size = 1;
  MPI_Datatype type = MPI_DATATYPE_NULL;
  data_type tag_type = data_type::u8;
};

/// Posts the header (checked mode) and every message of `message`.
inline void post_p2p_send(request_set& set, const outgoing_message& message, int peer, int tag, MPI_Comm comm,
                          std::size_t chunk, std::uint64_t* header)
{
  MPI_Request request = MPI_REQUEST_NULL;
  if (header != nullptr) {
    header[0] = (header_magic << 8) | static_cast<std::uint64_t>(message.tag_type);
    header[1] = message.count;
    header[2] = chunk;
    TERSE_MPI_TRY(MPI_Isend(header, header_words, MPI_UINT64_T, peer, tag, comm, &request));
    set.add(request, request_kind::send, peer);
  }
  const auto* bytes = static_cast<const std::byte*>(message.data);
  const std::size_t messages = message_count(message.count, chunk);
  for (std::size_t k = 0; k < messages; ++k) {
    const std::size_t offset = k * chunk;
    const std::size_t length = message.count - offset < chunk ? message.count - offset : chunk;
    TERSE_MPI_TRY(MPI_Isend(bytes + offset * message.element_size, static_cast<int>(length), message.type, peer, tag,
                            comm, &request));
    set.add(request, request_kind::send, peer);
  }
}

/// One point-to-point receive in progress, advanced by polling so a
/// sendrecv can drive its send and its receive together.
class p2p_receive {
 public:
  struct target {
    void* data = nullptr;
    std::size_t count = 0;
    std::size_t element_size = 1;
    MPI_Datatype type = MPI_DATATYPE_NULL;
    data_type tag_type = data_type::u8;
  };

  void start(const target& into, int peer, int tag, MPI_Comm comm, std::size_t chunk, std::uint64_t* header)
  {
    into_ = into;
    peer_ = peer;
    tag_ = tag;
    comm_ = comm;
    chunk_ = chunk;
    header_ = header;
    offset_ = 0;
    mismatch_.clear();
    if (header_ != nullptr) {
      MPI_Request request = MPI_REQUEST_NULL;
      TERSE_MPI_TRY(MPI_Irecv(header_, header_words, MPI_UINT64_T, peer_, tag_, comm_, &request));
      set_.add(request, request_kind::receive, peer_, MPI_UINT64_T, header_words);
      stage_ = stage::header;
    } else {
      stage_ = stage::probe;
    }
  }

  /// Makes what progress it can; true when the receive (or the drain of a
  /// mismatched message) is complete.
  bool advance()
  {
    switch (stage_) {
      case stage::header:
        if (set_.test_all()) {
          on_header();
        }
        return false;
      case stage::body:
        if (!set_.test_all()) {
          return false;
        }
        stage_ = stage::done;
        return true;
      case stage::probe: probe(); return false;
      case stage::probed_body:
        if (!set_.test_all()) {
          return false;
        }
        offset_ += current_length();
        stage_ = offset_ >= into_.count ? stage::done : stage::probe;
        return stage_ == stage::done;
      case stage::drain:
        if (!set_.test_all()) {
          return false;
        }
        if (drain_messages_ == 0) {
          stage_ = stage::done;
          return true;
        }
        post_next_drain();
        return false;
      case stage::done: return true;
    }
    return true;
  }

  /// Empty unless the sender's message did not fit this receive.
  const std::string& mismatch() const noexcept { return mismatch_; }
  request_set& requests() noexcept { return set_; }
  /// Gives the drain memory up without freeing it: MPI may still write into
  /// it after the transport is gone (a receive that could not be cancelled).
  void leak_drain() noexcept { drain_.leak(); }

 private:
  enum class stage : std::uint8_t { header, body, probe, probed_body, drain, done };

  std::size_t current_length() const noexcept
  {
    return into_.count - offset_ < chunk_ ? into_.count - offset_ : chunk_;
  }

  void on_header()
  {
    const std::uint64_t kind = header_[0];
    const std::uint64_t count = header_[1];
    const std::uint64_t chunk = header_[2];
    const std::uint64_t sender_type = kind & 0xffu;
    if ((kind >> 8) != header_magic || !is_data_type(sender_type) || chunk == 0 || chunk > 0x7fffffffu) {
      TERSE_FAIL(errc::malformed_payload, "a message from rank " + std::to_string(peer_) +
                                              " does not start with a terse header (are all ranks in checked mode?)");
    }
    const auto type = static_cast<data_type>(sender_type);
    if (type == into_.tag_type && count == into_.count && chunk == chunk_) {
      post_body();
      return;
    }
    mismatch_ = "rank " + std::to_string(peer_) + " sent " + std::to_string(count) + " " + std::string(name_of(type)) +
                " elements (in chunks of " + std::to_string(chunk) + ") where " + std::to_string(into_.count) + " " +
                std::string(name_of(into_.tag_type)) + " elements (chunks of " + std::to_string(chunk_) +
                ") were expected on tag " + std::to_string(tag_);
    drain_type_ = datatype_of(type);
    drain_element_size_ = size_of(type);
    drain_left_ = count;
    drain_chunk_ = chunk;
    drain_messages_ = message_count(count, chunk);
    stage_ = stage::drain;
    post_next_drain();
  }

  void post_body()
  {
    auto* bytes = static_cast<std::byte*>(into_.data);
    const std::size_t messages = message_count(into_.count, chunk_);
    for (std::size_t k = 0; k < messages; ++k) {
      const std::size_t offset = k * chunk_;
      const std::size_t length = into_.count - offset < chunk_ ? into_.count - offset : chunk_;
      MPI_Request request = MPI_REQUEST_NULL;
      TERSE_MPI_TRY(MPI_Irecv(bytes + offset * into_.element_size, static_cast<int>(length), into_.type, peer_, tag_,
                              comm_, &request));
      set_.add(request, request_kind::receive, peer_, into_.type, static_cast<int>(length));
    }
    stage_ = stage::body;
  }

  // Receives the sender's messages one at a time into scratch and drops them.
  void post_next_drain()
  {
    const std::size_t length = drain_left_ < drain_chunk_ ? drain_left_ : drain_chunk_;
    std::byte* sink = drain_.reserve(length * drain_element_size_ + 1);
    MPI_Request request = MPI_REQUEST_NULL;
    TERSE_MPI_TRY(MPI_Irecv(sink, static_cast<int>(length), drain_type_, peer_, tag_, comm_, &request));
    set_.add(request, request_kind::receive, peer_);
    drain_left_ -= length;
    --drain_messages_;
  }

  // Unchecked mode: look at the next message before receiving it.
  void probe()
  {
    int found = 0;
    MPI_Status status;
    TERSE_MPI_TRY(MPI_Iprobe(peer_, tag_, comm_, &found, &status));
    if (found == 0) {
      return;
    }
    int got = 0;
    TERSE_MPI_TRY(MPI_Get_count(&status, into_.type, &got));
    const std::size_t expected = current_length();
    MPI_Request request = MPI_REQUEST_NULL;
    if (got != MPI_UNDEFINED && static_cast<std::size_t>(got) == expected) {
      auto* bytes = static_cast<std::byte*>(into_.data);
      TERSE_MPI_TRY(MPI_Irecv(bytes + offset_ * into_.element_size, got, into_.type, peer_, tag_, comm_, &request));
      set_.add(request, request_kind::receive, peer_, into_.type, got);
      stage_ = stage::probed_body;
      return;
    }
    int bytes = 0;
    TERSE_MPI_TRY(MPI_Get_count(&status, MPI_BYTE, &bytes));
    TERSE_CHECK(bytes != MPI_UNDEFINED, errc::mismatch,
                "rank " + std::to_string(peer_) + " sent a message too large to drain on tag " + std::to_string(tag_));
    mismatch_ = "rank " + std::to_string(peer_) + " sent a message of " + std::to_string(bytes) + " bytes where " +
                std::to_string(expected * into_.element_size) + " were expected on tag " + std::to_string(tag_);
    std::byte* sink = drain_.reserve(static_cast<std::size_t>(bytes) + 1);
    TERSE_MPI_TRY(MPI_Irecv(sink, bytes, MPI_BYTE, peer_, tag_, comm_, &request));
    set_.add(request, request_kind::receive, peer_);
    drain_messages_ = 0;
    stage_ = stage::drain;
  }

  request_set set_;
  target into_;
  int peer_ = 0;
  int tag_ = 0;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::size_t chunk_ = 1;
  std::uint64_t* header_ = nullptr;
  // Owned, not borrowed from the transport: a pointer to a member of the
  // transport would dangle once the transport is moved.
  scratch_buffer drain_;  ///< mismatched messages, discarded
  stage stage_ = stage::done;
  std::size_t offset_ = 0;
  MPI_Datatype drain_type_ = MPI_BYTE;
  std::size_t drain_element_size_ = 1;
  std::size_t drain_left_ = 0;
  std::size_t drain_chunk_ = 1;
  std::size_t drain_messages_ = 0;
  std::string mismatch_;
};

}  // namespace terse::detail::mpi

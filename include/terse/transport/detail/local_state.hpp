#pragma once
/// @file
/// The state W in-process ranks share: a rendezvous with a deadline, the
/// per-rank call slots collectives read each other's buffers through, and
/// the mailboxes of point-to-point messages (blocking `take`, and the
/// non-blocking `take_arrived` / `wait_arrived` of grouped exchanges).

#include <terse/core/error.hpp>
#include <terse/core/verbs.hpp>
#include <terse/transport/detail/call_descriptor.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace terse::detail {

/// What a rank publishes for one collective call.
struct local_slot {
  call_descriptor call;
  const void* in = nullptr;
  void* out = nullptr;
  const std::size_t* counts = nullptr;
};

/// A point-to-point message; its buffer is recycled, so steady traffic of
/// the same sizes allocates nothing.
struct local_message {
  int tag = 0;
  data_type type = data_type::u8;
  std::size_t count = 0;
  std::vector<std::byte> bytes;
};

/// One receive of a grouped exchange: `size` bytes from `from`.
struct local_receive {
  int from = 0;
  std::byte* bytes = nullptr;
  std::size_t size = 0;
  bool done = false;
};

class local_state {
 public:
  using clock = std::chrono::steady_clock;

  local_state(int size, transport_options options)
      : size_(size),
        options_(options),
        arrivals_(static_cast<std::size_t>(size), 0),
        slots_(2 * static_cast<std::size_t>(size)),
        mailboxes_(static_cast<std::size_t>(size) * static_cast<std::size_t>(size)),
        spare_messages_(static_cast<std::size_t>(size) * static_cast<std::size_t>(size)),
        message_objects_(static_cast<std::size_t>(size) * static_cast<std::size_t>(size), 0)
  {
  }

  int size() const noexcept { return size_; }
  const transport_options& options() const noexcept { return options_; }
  bool healthy() const noexcept { return !broken_.load(std::memory_order_acquire); }

  /// Rank `rank`'s slot for its `sequence`-th collective. Slots alternate by
  /// parity: a rank can run at most one call ahead of the slowest (it cannot
  /// pass the next rendezvous alone), so two slots per rank never collide.
  local_slot& slot(int rank, std::uint64_t sequence) noexcept
  {
    return slots_[static_cast<std::size_t>(sequence & 1u) * static_cast<std::size_t>(size_) +
                  static_cast<std::size_t>(rank)];
  }

  void publish(int rank, std::uint64_t sequence, const local_slot& contents)
  {
    const std::lock_guard lock(mutex_);
    throw_if_broken();
    slot(rank, sequence) = contents;
  }

  /// Blocks until every rank has arrived, the deadline passes (errc::timeout;
  /// the world is then broken) or another rank breaks the world
  /// (errc::peer_failed). The mutex hand-off makes every write a rank made
  /// before arriving visible to every rank after it.
  void rendezvous(int rank, verb what)
  {
    std::unique_lock lock(mutex_);
    throw_if_broken();
    const std::uint64_t generation = generation_;
    arrivals_[static_cast<std::size_t>(rank)] = generation + 1;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
      return;
    }
    const auto deadline = clock::now() + options_.timeout;
    const bool released = changed_.wait_until(lock, deadline, [&] { return generation_ != generation || broken_; });
    if (generation_ != generation) {
      return;
    }
    if (!released) {
      break_world(errc::timeout, "rank " + std::to_string(rank) + " waited " +
                                     std::to_string(options_.timeout.count()) + " ms in " +
                                     std::string(to_string(what)) + " for " + missing_ranks(generation));
    }
    throw_if_broken();
  }

  /// Marks the world failed: every waiting and later call throws.
  void fail(int rank, std::string_view reason) noexcept
  {
    try {
      const std::lock_guard lock(mutex_);
      if (!broken_) {
        mark_broken(errc::peer_failed, "rank " + std::to_string(rank) + " failed: " + std::string(reason));
      }
    } catch (...) {  // allocation failure while failing: still mark it
      broken_.store(true, std::memory_order_release);
    }
    changed_.notify_all();
  }

  /// Queues a copy of `bytes` for (to, from); never blocks on the receiver.
  void post(int from, int to, int tag, data_type type, std::size_t count, const std::byte* bytes, std::size_t size)
  {
    {
      const std::lock_guard lock(mutex_);
      throw_if_broken();
      const std::size_t at = channel(to, from);
      local_message message = reuse_message(at, tag);
      message.tag = tag;
      message.type = type;
      message.count = count;
      message.bytes.resize(size);
      if (size != 0) {
        std::memcpy(message.bytes.data(), bytes, size);
      }
      mailboxes_[at].push_back(std::move(message));
    }
    changed_.notify_all();
  }

  /// Takes the oldest message from `from` with `tag` into `bytes`, waiting
  /// until the deadline. A message of another type or size is consumed and
  /// reported as errc::mismatch.
  void take(int to, int from, int tag, data_type type, std::size_t count, std::byte* bytes, std::size_t size)
  {
    std::unique_lock lock(mutex_);
    auto& box = mailboxes_[channel(to, from)];
    const auto match = [&] { return std::find_if(box.begin(), box.end(), [&](auto& m) { return m.tag == tag; }); };
    const auto deadline = clock::now() + options_.timeout;
    const bool arrived = changed_.wait_until(lock, deadline, [&] { return match() != box.end() || broken_; });
    auto found = match();
    if (found == box.end()) {
      if (!arrived) {
        break_world(errc::timeout, "rank " + std::to_string(to) + " waited " +
                                       std::to_string(options_.timeout.count()) +
                                       " ms in recv for a message from rank " + std::to_string(from) + " with tag " +
                                       std::to_string(tag));
      }
      throw_if_broken();
    }
    std::string mismatch = consume(to, from, tag, found, type, count, bytes, size);
    if (!mismatch.empty()) {
      TERSE_FAIL(errc::mismatch, std::move(mismatch));
    }
  }

  /// Takes, in order, the message of every pending receive of `receives`
  /// (tag `tag`) that has arrived, without blocking. Returns how many are
  /// still pending. A message of another size is consumed and described in
  /// `mismatch` (the first one only).
  std::size_t take_arrived(int to, int tag, std::vector<local_receive>& receives, std::string& mismatch)
  {
    const std::lock_guard lock(mutex_);
    return take_locked(to, tag, receives, mismatch);
  }

  /// Like take_arrived, but blocks until none is pending. Throws
  /// errc::timeout at `deadline` (the world is then broken) and
  /// errc::peer_failed when the world breaks while some are pending.
  void wait_arrived(int to, int tag, std::vector<local_receive>& receives, std::string& mismatch,
                    clock::time_point deadline)
  {
    std::unique_lock lock(mutex_);
    while (take_locked(to, tag, receives, mismatch) != 0) {
      throw_if_broken();
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout &&
          take_locked(to, tag, receives, mismatch) != 0) {
        throw_if_broken();
        break_world(errc::timeout, "rank " + std::to_string(to) + " waited " +
                                       std::to_string(options_.timeout.count()) + " ms for an exchange (tag " +
                                       std::to_string(tag) + ") with " + pending_senders(receives));
      }
    }
  }

  /// Breaks the world with errc::timeout on behalf of an exchange whose
  /// deadline passed while it was being tested.
  [[noreturn]] void exchange_timed_out(int to, int tag, const std::vector<local_receive>& receives)
  {
    const std::lock_guard lock(mutex_);
    throw_if_broken();
    break_world(errc::timeout, "rank " + std::to_string(to) + " waited " + std::to_string(options_.timeout.count()) +
                                   " ms for an exchange (tag " + std::to_string(tag) + ") with " +
                                   pending_senders(receives));
  }

  /// Throws errc::peer_failed if the world is broken.
  void check_healthy() const
  {
    if (broken_.load(std::memory_order_acquire)) {
      const std::lock_guard lock(mutex_);
      throw_if_broken();
    }
  }

 private:
  /// A message object for a new message with `tag` on channel `at`: a
  /// spare that last carried `tag`, else a new one. An exchange pattern
  /// repeats its tags with the same sizes and has at most one message of a
  /// tag in flight on a channel, so once every tag has been seen it stops
  /// allocating, however the threads interleave. Message objects are never
  /// freed, and the channel's mailbox and spare list always have room for
  /// all of them.
  local_message reuse_message(std::size_t at, int tag)
  {
    auto& spares = spare_messages_[at];
    const auto same_tag = std::find_if(spares.begin(), spares.end(), [tag](const auto& m) { return m.tag == tag; });
    if (same_tag == spares.end()) {
      ++message_objects_[at];
      mailboxes_[at].reserve(message_objects_[at]);
      spares.reserve(message_objects_[at]);
      return local_message{};
    }
    local_message message = std::move(*same_tag);
    *same_tag = std::move(spares.back());
    spares.pop_back();
    return message;
  }

  using mailbox = std::vector<local_message>;

  // Moves the message at `found` out of its mailbox (its buffer goes back to
  // the spares) and copies it into `bytes` if it fits; else describes why not.
  std::string consume(int to, int from, int tag, mailbox::iterator found, data_type type, std::size_t count,
                      std::byte* bytes, std::size_t size)
  {
    mailbox& box = mailboxes_[channel(to, from)];
    local_message message = std::move(*found);
    box.erase(found);
    const data_type sent_type = message.type;
    const std::size_t sent_count = message.count;
    if (sent_type == type && sent_count == count && size != 0) {
      std::memcpy(bytes, message.bytes.data(), size);
    }
    spare_messages_[channel(to, from)].push_back(std::move(message));
    if (sent_type == type && sent_count == count) {
      return {};
    }
    return "rank " + std::to_string(to) + " expected " + std::to_string(count) + " elements of " +
           std::to_string(size_of(type)) + " bytes from rank " + std::to_string(from) + " (tag " + std::to_string(tag) +
           ") but was sent " + std::to_string(sent_count) + " elements of " + std::to_string(size_of(sent_type)) +
           " bytes";
  }

  // In posting order, so two receives from one (peer, tag) take its
  // messages in the order they were sent.
  std::size_t take_locked(int to, int tag, std::vector<local_receive>& receives, std::string& mismatch)
  {
    std::size_t pending = 0;
    for (local_receive& receive : receives) {
      if (receive.done) {
        continue;
      }
      mailbox& box = mailboxes_[channel(to, receive.from)];
      const auto found = std::find_if(box.begin(), box.end(), [&](const local_message& m) { return m.tag == tag; });
      if (found == box.end()) {
        ++pending;
        continue;
      }
      std::string problem =
          consume(to, receive.from, tag, found, data_type::u8, receive.size, receive.bytes, receive.size);
      if (!problem.empty() && mismatch.empty()) {
        mismatch = std::move(problem);
      }
      receive.done = true;
    }
    return pending;
  }

  static std::string pending_senders(const std::vector<local_receive>& receives)
  {
    std::string text = "rank(s)";
    for (const local_receive& receive : receives) {
      if (!receive.done) {
        text += ' ' + std::to_string(receive.from);
      }
    }
    return text;
  }

  std::size_t channel(int to, int from) const noexcept
  {
    return static_cast<std::size_t>(to) * static_cast<std::size_t>(size_) + static_cast<std::size_t>(from);
  }

  std::string missing_ranks(std::uint64_t generation) const
  {
    std::string text = "rank(s)";
    for (int r = 0; r < size_; ++r) {
      if (arrivals_[static_cast<std::size_t>(r)] != generation + 1) {
        text += ' ' + std::to_string(r);
      }
    }
    return text;
  }

  void mark_broken(errc code, std::string reason)
  {
    broken_code_ = code;
    broken_reason_ = std::move(reason);
    broken_.store(true, std::memory_order_release);
  }

  /// Called with the lock held by the rank that saw the deadline pass.
  [[noreturn]] void break_world(errc code, std::string reason)
  {
    if (!broken_) {
      mark_broken(code, reason);
    }
    changed_.notify_all();
    TERSE_FAIL(code, reason);
  }

  void throw_if_broken() const
  {
    if (broken_) {
      TERSE_FAIL(errc::peer_failed, "the local world is broken: " + broken_reason_);
    }
  }

  const int size_;
  const transport_options options_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t generation_ = 0;
  int arrived_ = 0;
  std::vector<std::uint64_t> arrivals_;
  std::atomic<bool> broken_{false};
  errc broken_code_ = errc::peer_failed;
  std::string broken_reason_;
  std::vector<local_slot> slots_;
  // Vectors, not deques: erasing keeps their capacity, so steady traffic
  // allocates nothing.
  std::vector<mailbox> mailboxes_;
  std::vector<std::vector<local_message>> spare_messages_;
  std::vector<std::size_t> message_objects_;  ///< per channel: message objects ever made
};

}  // namespace terse::detail

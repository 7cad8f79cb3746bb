#pragma once
/// @file
/// (Over 400 lines: the rendezvous, the mailboxes and the record of dead
/// ranks share one lock and one deadline, so they are one class.)
/// The state W in-process ranks share: a rendezvous with a deadline, the
/// per-rank call slots collectives read each other's buffers through, and
/// the mailboxes of point-to-point messages (blocking `take`, and the
/// non-blocking `take_arrived` / `wait_arrived` of grouped exchanges).
///
/// Worlds split from one another (`local_transport::split`) are linked:
/// whichever breaks first (a timeout, a rank's abort) breaks every world
/// linked to it, directly or through others, so a rank waiting in any of
/// them gets errc::peer_failed at once. A world never holds its own lock
/// while it tells another, so two worlds breaking at once cannot deadlock.
///
/// With failure_scope::peer a rank's failure does not break the world: the
/// rank is marked dead, messages to it and receives from it (once nothing it
/// sent before dying is left) fail with terse::peer_error naming it, a
/// receive that outlives the deadline fails alone, and every world
/// collective raises peer_error as soon as any rank is dead.
///
/// (Over 400 lines: the rendezvous, the mailboxes and the split registry
/// share one mutex and one failure state, so they stay in one class.)

#include <terse/core/error.hpp>
#include <terse/core/verbs.hpp>
#include <terse/transport/detail/call_descriptor.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
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
  bool failed = false;  ///< failure_scope::peer: done without a message (the sender is dead or silent)
};

class local_state : public std::enable_shared_from_this<local_state> {
 public:
  using clock = std::chrono::steady_clock;

  local_state(int size, transport_options options)
      : size_(size),
        options_(options),
        arrivals_(static_cast<std::size_t>(size), 0),
        dead_(static_cast<std::size_t>(size), 0),
        slots_(2 * static_cast<std::size_t>(size)),
        mailboxes_(static_cast<std::size_t>(size) * static_cast<std::size_t>(size)),
        spare_messages_(static_cast<std::size_t>(size) * static_cast<std::size_t>(size)),
        message_objects_(static_cast<std::size_t>(size) * static_cast<std::size_t>(size), 0)
  {
  }

  int size() const noexcept { return size_; }
  const transport_options& options() const noexcept { return options_; }
  bool healthy() const noexcept { return !broken_.load(std::memory_order_acquire); }
  bool per_peer() const noexcept { return options_.failures == failure_scope::peer; }

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
  void rendezvous(int rank, verb what) { meet(rank, what, false); }

  /// The closing rendezvous of a collective: every rank passed the opening
  /// one and reads its peers' buffers until here, so each waits for all,
  /// even when the world broke meanwhile (a linked world broke, a rank was
  /// aborted): leaving early would let a rank free a buffer a peer still
  /// reads. Ranks between the two rendezvous only copy and add, so they all
  /// arrive; only the deadline ends the wait early. Then it throws if the
  /// world is broken.
  void leave(int rank, verb what) { meet(rank, what, true); }

  /// Marks the world failed: every waiting and later call throws, here and
  /// in every linked world.
  void fail(int rank, std::string_view reason) noexcept
  {
    std::vector<std::shared_ptr<local_state>> linked;
    std::string cause;
    try {
      const std::lock_guard lock(mutex_);
      if (per_peer()) {
        mark_dead(rank, reason);
        // A world split from this one names ranks differently: break it.
        if (!broken_) {
          linked = linked_worlds();
          cause = "rank " + std::to_string(rank) + " failed: " + std::string(reason);
        }
      } else if (!broken_) {
        mark_broken(errc::peer_failed, "rank " + std::to_string(rank) + " failed: " + std::string(reason));
        linked = linked_worlds();
        cause = broken_reason_;
      }
    } catch (...) {  // allocation failure while failing: still mark it
      broken_.store(true, std::memory_order_release);
    }
    changed_.notify_all();
    tell(linked, cause);
  }

  /// The sub-world of the split with id `split` (the same on every rank of
  /// this world) for `colour`, with `members` ranks: the first member to
  /// arrive makes it and links it to this world, the others find it here.
  /// A world of one is made at once and not registered.
  std::shared_ptr<local_state> join_split(std::uint64_t split, int colour, int members)
  {
    const std::lock_guard lock(mutex_);
    throw_if_broken();
    for (std::size_t i = 0; i < pending_splits_.size(); ++i) {
      pending_split& pending = pending_splits_[i];
      if (pending.split == split && pending.colour == colour) {
        std::shared_ptr<local_state> world = pending.world;
        if (--pending.waiting == 0) {  // the last member: nobody looks for it any more
          pending = std::move(pending_splits_.back());
          pending_splits_.pop_back();
        }
        return world;
      }
    }
    auto world = std::make_shared<local_state>(members, options_);
    // Linked under this world's lock while it is healthy: a later break here
    // finds the sub-world in links_. Nobody else can see the sub-world yet,
    // so its own links need no lock.
    std::erase_if(links_, [](const std::weak_ptr<local_state>& w) { return w.expired(); });
    links_.push_back(world);
    world->links_.push_back(weak_from_this());
    if (members > 1) {
      pending_splits_.push_back(pending_split{split, colour, world, members - 1});
    }
    return world;
  }

  /// Queues a copy of `bytes` for (to, from); never blocks on the receiver.
  /// failure_scope::peer: a dead `to` raises peer_error naming it.
  void post(int from, int to, int tag, data_type type, std::size_t count, const std::byte* bytes, std::size_t size)
  {
    if (!post_unless_dead(from, to, tag, type, count, bytes, size)) {
      throw_dead(to);
    }
  }

  /// post(), but returns false instead of raising when `to` is dead
  /// (failure_scope::peer); the message is then dropped.
  bool post_unless_dead(int from, int to, int tag, data_type type, std::size_t count, const std::byte* bytes,
                        std::size_t size)
  {
    {
      const std::lock_guard lock(mutex_);
      throw_if_broken();
      if (dead_[static_cast<std::size_t>(from)] != 0) {
        throw_dead(from, "this rank was reported failed and may not send");
      }
      if (dead_[static_cast<std::size_t>(to)] != 0) {
        return false;
      }
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
    return true;
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
    const auto sender_dead = [&] { return dead_[static_cast<std::size_t>(from)] != 0; };
    const bool arrived =
        changed_.wait_until(lock, deadline, [&] { return match() != box.end() || broken_ || sender_dead(); });
    auto found = match();
    if (found == box.end() && per_peer()) {
      throw_if_broken();
      if (sender_dead()) {
        throw_dead(from);
      }
      if (!arrived) {  // a silent peer fails this receive alone
        throw peer_error(from,
                         "rank " + std::to_string(to) + " waited " + std::to_string(options_.timeout.count()) +
                             " ms in recv for a message from rank " + std::to_string(from) + " with tag " +
                             std::to_string(tag),
                         TERSE_HERE, errc::timeout);
      }
    }
    if (found == box.end()) {
      if (!arrived) {
        break_world(lock, errc::timeout,
                    "rank " + std::to_string(to) + " waited " + std::to_string(options_.timeout.count()) +
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
        if (per_peer()) {
          give_up_pending(receives);
          return;
        }
        break_world(lock, errc::timeout,
                    "rank " + std::to_string(to) + " waited " + std::to_string(options_.timeout.count()) +
                        " ms for an exchange (tag " + std::to_string(tag) + ") with " + pending_senders(receives));
      }
    }
  }

  /// Breaks the world with errc::timeout on behalf of an exchange whose
  /// deadline passed while it was being tested; with failure_scope::peer
  /// marks its pending receives failed instead, and returns.
  void exchange_timed_out(int to, int tag, std::vector<local_receive>& receives)
  {
    std::unique_lock lock(mutex_);
    throw_if_broken();
    if (per_peer()) {
      give_up_pending(receives);
      return;
    }
    break_world(lock, errc::timeout,
                "rank " + std::to_string(to) + " waited " + std::to_string(options_.timeout.count()) +
                    " ms for an exchange (tag " + std::to_string(tag) + ") with " + pending_senders(receives));
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

  // A rendezvous; a closing one waits for every rank even in a broken world.
  void meet(int rank, verb what, bool closing)
  {
    std::unique_lock lock(mutex_);
    if (!closing) {
      throw_if_broken();
      throw_if_any_dead(what);
    }
    const std::uint64_t generation = generation_;
    arrivals_[static_cast<std::size_t>(rank)] = generation + 1;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
      return;
    }
    const auto deadline = clock::now() + options_.timeout;
    const bool released = changed_.wait_until(lock, deadline, [&] {
      return generation_ != generation || (!closing && (broken_.load(std::memory_order_relaxed) || dead_count_ != 0));
    });
    if (generation_ != generation) {
      return;
    }
    if (!released) {
      break_world(lock, errc::timeout,
                  "rank " + std::to_string(rank) + " waited " + std::to_string(options_.timeout.count()) + " ms in " +
                      std::string(to_string(what)) + " for " + missing_ranks(generation));
    }
    throw_if_broken();
    throw_if_any_dead(what);
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
        if (dead_[static_cast<std::size_t>(receive.from)] != 0) {
          receive.done = true;  // what it sent before dying was taken above; nothing more comes
          receive.failed = true;
        } else {
          ++pending;
        }
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

  /// Called with `lock` (on mutex_) held by the rank that saw the deadline
  /// pass. Unlocks before telling the linked worlds.
  [[noreturn]] void break_world(std::unique_lock<std::mutex>& lock, errc code, std::string reason)
  {
    std::vector<std::shared_ptr<local_state>> linked;
    if (!broken_) {
      mark_broken(code, reason);
      linked = linked_worlds();
    }
    changed_.notify_all();
    if (!linked.empty()) {
      lock.unlock();
      tell(linked, reason);
    }
    TERSE_FAIL(code, reason);
  }

  /// The linked worlds still alive. Called with the lock held.
  std::vector<std::shared_ptr<local_state>> linked_worlds() const
  {
    std::vector<std::shared_ptr<local_state>> alive;
    alive.reserve(links_.size());
    for (const std::weak_ptr<local_state>& link : links_) {
      if (std::shared_ptr<local_state> world = link.lock()) {
        alive.push_back(std::move(world));
      }
    }
    return alive;
  }

  /// Breaks `linked` because this world broke for `cause`. Called without
  /// the lock.
  static void tell(const std::vector<std::shared_ptr<local_state>>& linked, const std::string& cause) noexcept
  {
    for (const std::shared_ptr<local_state>& world : linked) {
      world->linked_world_broke(cause);
    }
  }

  /// A linked world broke: break this one (once) and pass it on.
  void linked_world_broke(const std::string& cause) noexcept
  {
    std::vector<std::shared_ptr<local_state>> linked;
    try {
      const std::lock_guard lock(mutex_);
      if (broken_) {
        return;  // already broken, and its links already told
      }
      mark_broken(errc::peer_failed, "a world it was split from or into broke (" + cause + ")");
      linked = linked_worlds();
    } catch (...) {
      broken_.store(true, std::memory_order_release);
    }
    changed_.notify_all();
    tell(linked, cause);
  }

  /// failure_scope::peer. Called with the lock held.
  void mark_dead(int rank, std::string_view reason)
  {
    if (dead_[static_cast<std::size_t>(rank)] == 0) {
      dead_[static_cast<std::size_t>(rank)] = 1;
      ++dead_count_;
      if (first_dead_ < 0) {
        first_dead_ = rank;
        first_dead_reason_ = std::string(reason);
      }
    }
  }

  static void give_up_pending(std::vector<local_receive>& receives) noexcept
  {
    for (local_receive& receive : receives) {
      if (!receive.done) {
        receive.done = true;
        receive.failed = true;
      }
    }
  }

  [[noreturn]] static void throw_dead(int rank, std::string_view what = "it failed or left")
  {
    throw peer_error(rank, "rank " + std::to_string(rank) + ": " + std::string(what), TERSE_HERE);
  }

  /// World collectives need every rank: with failure_scope::peer, one dead
  /// rank fails them all. Called with the lock held.
  void throw_if_any_dead(verb what) const
  {
    if (dead_count_ != 0) {
      throw peer_error(first_dead_,
                       std::string(to_string(what)) + " needs every rank, and rank " + std::to_string(first_dead_) +
                           " failed: " + first_dead_reason_,
                       TERSE_HERE);
    }
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
  std::vector<char> dead_;  ///< failure_scope::peer: ranks that failed (char: no packed bits)
  int dead_count_ = 0;
  int first_dead_ = -1;
  std::string first_dead_reason_;
  std::atomic<bool> broken_{false};
  errc broken_code_ = errc::peer_failed;
  std::string broken_reason_;
  std::vector<local_slot> slots_;
  // Vectors, not deques: erasing keeps their capacity, so steady traffic
  // allocates nothing.
  std::vector<mailbox> mailboxes_;
  std::vector<std::vector<local_message>> spare_messages_;
  std::vector<std::size_t> message_objects_;  ///< per channel: message objects ever made

  /// A sub-world some of its members have not picked up yet.
  struct pending_split {
    std::uint64_t split = 0;
    int colour = 0;
    std::shared_ptr<local_state> world;
    int waiting = 0;  ///< members still to pick it up
  };
  std::vector<std::weak_ptr<local_state>> links_;  ///< worlds split from this one, and the one it was split from
  std::vector<pending_split> pending_splits_;
};

}  // namespace terse::detail

#pragma once
/// @file
/// The grouped exchanges of one local rank (core/exchange.hpp). Sends are
/// buffered copies into the receivers' mailboxes, so they complete at
/// start; each exchange in flight keeps the list of its pending receives in
/// a slot of a small table, recycled (vectors keep their capacity) so
/// exchanges of a shape seen before allocate nothing. With
/// failure_scope::peer, a message to or from a dead (or, for receives,
/// silent) peer fails alone: `wait(id, report)` lists it, and `wait(id)`
/// raises terse::peer_error naming it once the rest has completed.

#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/span.hpp>
#include <terse/transport/detail/local_state.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace terse::detail {

class local_exchanges {
 public:
  using clock = local_state::clock;

  exchange_id start(local_state& state, int rank, host_span<const outgoing<>> sends, host_span<const incoming<>> recvs,
                    int tag)
  {
    const int world = state.size();
    TERSE_EXPECTS(tag >= 0, "exchange tags are non-negative (got " + std::to_string(tag) + ")");
    for (const outgoing<>& message : sends) {
      check_peer(message.peer, world);
    }
    for (const incoming<>& message : recvs) {
      check_peer(message.peer, world);
    }
    state.check_healthy();
    slot& taken = free_slot(tag);
    taken.tag = tag;
    taken.deadline = clock::now() + state.options().timeout;
    taken.mismatch.clear();
    taken.receives.clear();
    taken.failed_sends.clear();
    taken.failed_send_peers.clear();
    for (const incoming<>& message : recvs) {
      taken.receives.push_back(local_receive{message.peer, message.bytes.data(), message.bytes.size(), false});
    }
    try {
      for (std::size_t k = 0; k < sends.size(); ++k) {
        const outgoing<>& message = sends[k];
        if (!state.post_unless_dead(rank, message.peer, tag, data_type::u8, message.bytes.size(), message.bytes.data(),
                                    message.bytes.size())) {
          taken.failed_sends.push_back(k);
          taken.failed_send_peers.push_back(message.peer);
        }
      }
    } catch (...) {
      taken.id = 0;  // a broken world: nothing of this exchange will complete
      throw;
    }
    taken.id = ++last_id_;
    return exchange_id{taken.id};
  }

  /// `report`: where failed messages go (failure_scope::peer); null: raise.
  bool test(local_state& state, int rank, exchange_id id, exchange_report* report = nullptr)
  {
    slot& found = find(id);
    return finish(found, report, [&] {
      if (state.take_arrived(rank, found.tag, found.receives, found.mismatch) == 0) {
        return true;
      }
      if (clock::now() >= found.deadline) {
        state.exchange_timed_out(rank, found.tag, found.receives);
        return true;  // failure_scope::peer: the silent peers' receives failed
      }
      state.check_healthy();
      return false;
    });
  }

  void wait(local_state& state, int rank, exchange_id id, exchange_report* report = nullptr)
  {
    slot& found = find(id);
    (void)finish(found, report, [&] {
      state.wait_arrived(rank, found.tag, found.receives, found.mismatch, found.deadline);
      return true;
    });
  }

 private:
  struct slot {
    std::uint64_t id = 0;  ///< 0: free
    int tag = 0;
    bool used = false;
    clock::time_point deadline{};
    std::vector<local_receive> receives;
    std::vector<std::size_t> failed_sends;  ///< failure_scope::peer: sends to dead peers, dropped
    std::vector<int> failed_send_peers;
    std::string mismatch;
  };

  static void check_peer(int peer, int world)
  {
    TERSE_EXPECTS(peer >= 0 && peer < world,
                  "exchange peer " + std::to_string(peer) + " is not a rank of a world of " + std::to_string(world));
  }

  // A free slot that last served `tag` (its lists already have the room an
  // exchange with that tag needs), else a new one: a repeating pattern of
  // tags stops allocating once each tag was seen, however threads interleave.
  slot& free_slot(int tag)
  {
    for (slot& s : slots_) {
      if (s.id == 0 && s.tag == tag && s.used) {
        return s;
      }
    }
    slot& fresh = slots_.emplace_back();
    fresh.used = true;
    return fresh;
  }

  slot& find(exchange_id id)
  {
    for (slot& s : slots_) {
      if (s.id != 0 && s.id == id.value) {
        return s;
      }
    }
    TERSE_FAIL(errc::invalid_argument,
               "exchange " + std::to_string(id.value) + " is not in flight on this rank (unknown, or already spent)");
  }

  // Runs `progress`; the slot is spent once it completes or throws, and a
  // completed exchange with a mismatched message throws errc::mismatch, one
  // with a failed message peer_error unless `report` takes the failures.
  template <class Progress>
  static bool finish(slot& s, exchange_report* report, Progress&& progress)
  {
    try {
      if (!progress()) {
        return false;
      }
    } catch (...) {
      s.id = 0;
      throw;
    }
    s.id = 0;
    if (report != nullptr) {
      report->clear();
      report->failed_sends.insert(report->failed_sends.end(), s.failed_sends.begin(), s.failed_sends.end());
    } else if (!s.failed_send_peers.empty()) {
      const int peer = s.failed_send_peers.front();
      throw peer_error(peer, "rank " + std::to_string(peer) + " failed; a message to it was dropped", TERSE_HERE);
    }
    for (std::size_t k = 0; k < s.receives.size(); ++k) {
      if (!s.receives[k].failed) {
        continue;
      }
      if (report == nullptr) {
        throw peer_error(s.receives[k].from,
                         "rank " + std::to_string(s.receives[k].from) +
                             " failed or did not answer within the deadline (exchange tag " + std::to_string(s.tag) +
                             ")",
                         TERSE_HERE);
      }
      report->failed_recvs.push_back(k);
    }
    if (!s.mismatch.empty()) {
      TERSE_FAIL(errc::mismatch, std::move(s.mismatch));
    }
    return true;
  }

  std::vector<slot> slots_;
  std::uint64_t last_id_ = 0;
};

}  // namespace terse::detail

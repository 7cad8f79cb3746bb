#pragma once
// A transport for overlap tests without timing: it forwards every verb to a
// local transport and logs when each exchange is posted ("post <tag>") and
// completes ("done <tag>"), so a test can check where those events fall
// among the trainer's own ("compute <k>").
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace test_overlap {

/// Forwards every verb to a local transport and logs exchange events.
class recording_transport {
 public:
  recording_transport(terse::local_transport& inner, std::vector<std::string>& log) : inner_(&inner), log_(&log) {}

  template <terse::memory_space S>
  static constexpr bool accepts_memory = S == terse::memory_space::host;

  int rank() const { return inner_->rank(); }
  int size() const { return inner_->size(); }

  template <class... A>
  void allreduce(A&&... a)
  {
    inner_->allreduce(std::forward<A>(a)...);
  }
  template <class... A>
  void reduce_scatter(A&&... a)
  {
    inner_->reduce_scatter(std::forward<A>(a)...);
  }
  template <class... A>
  void allgather(A&&... a)
  {
    inner_->allgather(std::forward<A>(a)...);
  }
  template <class... A>
  void allgatherv(A&&... a)
  {
    inner_->allgatherv(std::forward<A>(a)...);
  }
  template <class... A>
  void broadcast(A&&... a)
  {
    inner_->broadcast(std::forward<A>(a)...);
  }
  void barrier() { inner_->barrier(); }

  terse::exchange_id start_exchange(terse::host_span<const terse::outgoing<>> sends,
                                    terse::host_span<const terse::incoming<>> recvs, int tag)
  {
    const terse::exchange_id id = inner_->start_exchange(sends, recvs, tag);
    tags_.emplace_back(id, tag);
    log_->push_back("post " + std::to_string(tag));
    return id;
  }
  bool test(terse::exchange_id id)
  {
    const bool done = inner_->test(id);
    if (done) {
      completed(id);
    }
    return done;
  }
  void wait(terse::exchange_id id)
  {
    inner_->wait(id);
    completed(id);
  }

 private:
  void completed(terse::exchange_id id)
  {
    const auto at = std::find_if(tags_.begin(), tags_.end(), [&](const auto& entry) { return entry.first == id; });
    log_->push_back("done " + std::to_string(at->second));
    tags_.erase(at);
  }

  terse::local_transport* inner_;
  std::vector<std::string>* log_;
  std::vector<std::pair<terse::exchange_id, int>> tags_;
};

/// Where `event` first appears in `log` (a test failure if it never does).
inline std::size_t position(const std::vector<std::string>& log, const std::string& event)
{
  const auto at = std::find(log.begin(), log.end(), event);
  REQUIRE_MESSAGE(at != log.end(), "no event '" << event << "'");
  return static_cast<std::size_t>(at - log.begin());
}

}  // namespace test_overlap

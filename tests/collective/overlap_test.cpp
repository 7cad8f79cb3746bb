// Overlap without timing: a transport that records when each exchange is
// posted and when it completes shows that bucket k's exchange is still in
// flight while the trainer computes bucket k + 1.
#include <terse/collective/allreduce.hpp>
#include <terse/feedback/residual.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <barrier>
#include <string>
#include <utility>
#include <vector>

#include "test_codecs.hpp"

namespace {

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

std::size_t position(const std::vector<std::string>& log, const std::string& event)
{
  const auto at = std::find(log.begin(), log.end(), event);
  REQUIRE_MESSAGE(at != log.end(), "no event '" << event << "'");
  return static_cast<std::size_t>(at - log.begin());
}

}  // namespace

TEST_CASE("bucket k's exchange completes only after the trainer has started computing bucket k + 1")
{
  constexpr int world = 2;
  constexpr std::size_t buckets = 8;
  const std::vector<std::size_t> sizes(buckets, 2048);
  const terse::layout shape(sizes, 2048);  // one tensor per bucket
  std::vector<std::vector<std::string>> logs(world);
  // Rank 0 starts each bucket while rank 1 waits, then rank 1 while rank 0
  // waits, so neither finds its peer's half of an exchange done at start:
  // the order of events cannot depend on how the threads are scheduled.
  std::barrier turn(world);
  terse::run_local(world, [&](terse::local_transport& local) {
    std::vector<std::string>& log = logs[static_cast<std::size_t>(local.rank())];
    recording_transport t(local, log);
    terse::allreduce sync(t, shape, test_codecs::grid{}, terse::feedback::residual{});
    std::vector<float> grads(shape.total());
    for (std::size_t k = 0; k < buckets; ++k) {
      log.push_back("compute " + std::to_string(k));  // the trainer's backward for bucket k
      const terse::bucket& b = shape.buckets()[k];
      std::fill_n(grads.begin() + static_cast<std::ptrdiff_t>(b.offset), b.count, 0.25f * static_cast<float>(k));
      if (local.rank() == 0) {
        sync.start(b.id, terse::host_span<float>(grads).subspan(b.offset, b.count));
        turn.arrive_and_wait();
        turn.arrive_and_wait();
      } else {
        turn.arrive_and_wait();
        sync.start(b.id, terse::host_span<float>(grads).subspan(b.offset, b.count));
        turn.arrive_and_wait();
      }
    }
    sync.wait_all();
    for (std::size_t k = 0; k < buckets; ++k) {
      REQUIRE(grads[shape.buckets()[k].offset] == 0.25f * static_cast<float>(k));
    }
  });
  for (const auto& log : logs) {
    for (std::size_t k = 0; k + 1 < buckets; ++k) {
      CAPTURE(k);
      // unit k's last phase uses tag base + 2k + 1
      const std::string last_phase = std::to_string(terse::detail::allreduce_tag_base + 2 * static_cast<int>(k) + 1);
      CHECK(position(log, "post " + std::to_string(terse::detail::allreduce_tag_base + 2 * static_cast<int>(k))) <
            position(log, "compute " + std::to_string(k + 1)));
      CHECK(position(log, "done " + last_phase) > position(log, "compute " + std::to_string(k + 1)));
    }
  }
}

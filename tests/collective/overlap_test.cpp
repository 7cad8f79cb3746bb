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

#include "recording_transport.hpp"
#include "test_codecs.hpp"

using test_overlap::position;
using test_overlap::recording_transport;

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

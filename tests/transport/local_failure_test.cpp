// Failure on the local transport: mismatched calls, bad arguments, silent
// and failed peers. Never a hang, never garbage.
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

terse::transport_options short_timeout(std::chrono::milliseconds timeout)
{
  terse::transport_options options;
  options.timeout = timeout;
  return options;
}

struct error_log {
  std::mutex guard;
  std::vector<terse::errc> codes;
  std::vector<std::string> messages;
  void record(const terse::error& e)
  {
    const std::lock_guard lock(guard);
    codes.push_back(e.code());
    messages.emplace_back(e.what());
  }
  int count(terse::errc code)
  {
    const std::lock_guard lock(guard);
    return static_cast<int>(std::count(codes.begin(), codes.end(), code));
  }
};
}  // namespace

TEST_CASE("different counts on one rank raise a mismatch on every rank and the world stays usable")
{
  constexpr int world = 4;
  error_log log;
  std::vector<float> after(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    std::vector<float> v(t.rank() == 2 ? 9 : 10, 1.0f);
    try {
      t.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
    } catch (const terse::error& e) {
      log.record(e);
    }
    std::vector<float> ok(10, 1.0f);
    t.allreduce(terse::host_span<float>(ok), terse::reduce_op::sum);
    after[static_cast<std::size_t>(t.rank())] = ok[9];
  });
  CHECK(log.count(terse::errc::mismatch) == world);
  CHECK(log.messages[0].find("count=9") != std::string::npos);
  CHECK(after == std::vector<float>(world, 4.0f));
}

TEST_CASE("a different verb on one rank raises a mismatch on every rank")
{
  constexpr int world = 3;
  error_log log;
  terse::run_local(world, [&](terse::local_transport& t) {
    std::vector<float> v(6, 1.0f);
    std::vector<float> gathered(18);
    try {
      if (t.rank() == 1) {
        t.allgather(terse::host_span<const float>(v), terse::host_span<float>(gathered));
      } else {
        t.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
      }
    } catch (const terse::error& e) {
      log.record(e);
    }
    t.barrier();
  });
  CHECK(log.count(terse::errc::mismatch) == world);
}

TEST_CASE("bad arguments on one rank: invalid_argument there, mismatch on its peers, no waiting")
{
  constexpr int world = 4;
  error_log log;
  const auto start = clock_type::now();
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        std::vector<float> in(8, 1.0f), out(t.rank() == 3 ? 7 : 8);
        try {
          t.allreduce(terse::host_span<const float>(in), terse::host_span<float>(out), terse::reduce_op::sum);
        } catch (const terse::error& e) {
          log.record(e);
        }
        std::vector<float> root_only(4, 0.0f);
        try {
          t.broadcast(terse::host_span<float>(root_only), t.rank() == 0 ? 7 : 0);  // root 7 does not exist
        } catch (const terse::error& e) {
          log.record(e);
        }
      },
      short_timeout(20s));
  CHECK(clock_type::now() - start < 5s);  // nobody waited for the timeout
  CHECK(log.count(terse::errc::invalid_argument) == 2);
  CHECK(log.count(terse::errc::mismatch) == 2 * (world - 1));
}

TEST_CASE("a silent peer makes every other rank time out within the deadline, then the world is broken")
{
  constexpr int world = 4;
  constexpr auto timeout = 300ms;
  error_log log;
  std::vector<double> waited(world, 0.0);
  std::atomic<bool> late_rank_saw_broken{false};
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        std::vector<float> v(16, 1.0f);
        if (t.rank() == 2) {
          std::this_thread::sleep_for(3 * timeout);  // silent
          try {
            t.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
          } catch (const terse::error& e) {
            late_rank_saw_broken = e.code() == terse::errc::peer_failed;
          }
          return;
        }
        const auto start = clock_type::now();
        try {
          t.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
          FAIL("expected a timeout");
        } catch (const terse::error& e) {
          log.record(e);
        }
        waited[static_cast<std::size_t>(t.rank())] = std::chrono::duration<double>(clock_type::now() - start).count();
        CHECK_FALSE(t.healthy());
        CHECK_THROWS_AS(t.barrier(), terse::error);  // every later call fails fast
      },
      short_timeout(timeout));
  // The first rank to give up reports the timeout naming the silent rank;
  // the others may be woken by it (peer_failed) or time out themselves.
  CHECK(log.count(terse::errc::timeout) >= 1);
  CHECK(log.count(terse::errc::timeout) + log.count(terse::errc::peer_failed) == world - 1);
  bool named = false;
  for (const auto& m : log.messages) {
    named = named || m.find("rank(s) 2") != std::string::npos;
  }
  CHECK(named);
  for (int r = 0; r < world; ++r) {
    if (r != 2) {
      CHECK(waited[static_cast<std::size_t>(r)] < 0.3 + 0.5);  // timeout + slack
    }
  }
  CHECK(late_rank_saw_broken);
}

TEST_CASE("a rank that fails tells its peers at once and run_local rethrows the root cause")
{
  constexpr int world = 4;
  error_log log;
  const auto start = clock_type::now();
  try {
    terse::run_local(
        world,
        [&](terse::local_transport& t) {
          if (t.rank() == 1) {
            throw std::runtime_error("out of memory in rank 1's forward pass");
          }
          std::vector<float> v(4, 1.0f);
          try {
            t.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
          } catch (const terse::error& e) {
            log.record(e);
            throw;
          }
        },
        short_timeout(30s));
    FAIL("expected run_local to rethrow");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "out of memory in rank 1's forward pass");
  }
  CHECK(clock_type::now() - start < 5s);
  CHECK(log.count(terse::errc::peer_failed) == world - 1);
  CHECK(log.messages[0].find("rank 1 failed") != std::string::npos);
}

TEST_CASE("a recv from a silent peer times out")
{
  error_log log;
  terse::run_local(
      2,
      [&](terse::local_transport& t) {
        if (t.rank() == 0) {
          std::vector<float> v(2);
          const auto start = clock_type::now();
          try {
            t.recv(terse::host_span<float>(v), 1, 0);
          } catch (const terse::error& e) {
            log.record(e);
          }
          CHECK(clock_type::now() - start < 700ms);
        }
      },
      short_timeout(200ms));
  CHECK(log.count(terse::errc::timeout) == 1);
}

// faulty on the real local transport: a failed or killed rank is reported
// to its peers at once, a silent or too slow one makes them time out within
// the deadline, a short delay is harmless. Never a hang.
#include <terse/transport/faulty.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

terse::transport_options with_timeout(std::chrono::milliseconds timeout)
{
  terse::transport_options options;
  options.timeout = timeout;
  return options;
}

double seconds_since(clock_type::time_point start)
{
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// What each rank saw: the error (if any) and how long its failing call took.
struct outcome {
  std::optional<terse::errc> code;
  std::string message;
  double seconds = 0.0;
  int calls_done = 0;
};

class outcomes {
 public:
  explicit outcomes(int world) : ranks_(static_cast<std::size_t>(world)) {}
  void set(int rank, outcome o)
  {
    const std::lock_guard lock(guard_);
    ranks_[static_cast<std::size_t>(rank)] = std::move(o);
  }
  const outcome& operator[](int rank) const { return ranks_[static_cast<std::size_t>(rank)]; }

 private:
  std::mutex guard_;
  std::vector<outcome> ranks_;
};

// Makes `steps` allreduces through `f` and records how they ended. Returns
// the error, if one came, so the caller can rethrow it or not.
template <class Transport>
std::optional<terse::error> allreduce_steps(Transport& f, int steps, outcome& seen)
{
  std::vector<float> v(32, 1.0f);
  for (int i = 0; i < steps; ++i) {
    const auto start = clock_type::now();
    try {
      f.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
      ++seen.calls_done;
    } catch (const terse::error& e) {
      seen.code = e.code();
      seen.message = e.what();
      seen.seconds = seconds_since(start);
      return e;
    }
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("fail: the rank throws at its planned call and its peers get peer_failed at once")
{
  constexpr int world = 4;
  outcomes seen(world);
  const auto start = clock_type::now();
  const terse::fault_plan plan{.rank = 2, .at_call = 1, .kind = terse::fault_kind::fail};
  CHECK_THROWS_AS(terse::run_local(
                      world,
                      [&](terse::local_transport& t) {
                        terse::faulty f(t, plan);
                        outcome o;
                        auto failure = allreduce_steps(f, 3, o);
                        CHECK(f.fired() == (t.rank() == 2));
                        seen.set(t.rank(), o);
                        if (failure) {
                          throw *failure;  // run_local tells the peers
                        }
                      },
                      with_timeout(20s)),
                  terse::error);
  CHECK(seconds_since(start) < 5.0);  // far below the 20 s timeout
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    CHECK(seen[r].calls_done == 1);  // call 0 went through everywhere
    REQUIRE(seen[r].code.has_value());
    CHECK(*seen[r].code == terse::errc::peer_failed);
  }
  CHECK(seen[2].message.find("injected failure") != std::string::npos);
  CHECK(seen[2].message.find("rank 2 at call 1 (allreduce)") != std::string::npos);
}

TEST_CASE("kill: the rank aborts the transport itself, so peers learn at once, and it stays dead")
{
  constexpr int world = 4;
  outcomes seen(world);
  const auto start = clock_type::now();
  bool later_call_refused = false;
  bool reported_unhealthy = false;
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        terse::faulty f(t, terse::fault_plan{.rank = 0, .at_call = 2, .kind = terse::fault_kind::kill});
        outcome o;
        allreduce_steps(f, 4, o);  // swallowed: only kill's own abort can tell the peers
        if (t.rank() == 0) {
          reported_unhealthy = !f.healthy();
          try {
            f.barrier();
          } catch (const terse::error& e) {
            later_call_refused = e.code() == terse::errc::peer_failed;
          }
          CHECK(f.calls() == 4);
        }
        seen.set(t.rank(), o);
      },
      with_timeout(20s));
  CHECK(seconds_since(start) < 5.0);
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    CHECK(seen[r].calls_done == 2);
    REQUIRE(seen[r].code.has_value());
    CHECK(*seen[r].code == terse::errc::peer_failed);
    CHECK(seen[r].seconds < 2.0);
  }
  CHECK(seen[1].message.find("injected kill fault on rank 0") != std::string::npos);
  CHECK(later_call_refused);
  CHECK(reported_unhealthy);
}

TEST_CASE("silent: peers time out within the deadline and the silent rank throws timeout itself")
{
  constexpr int world = 4;
  constexpr auto timeout = 300ms;
  outcomes seen(world);
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        terse::faulty f(t,
                        terse::fault_plan{.rank = 1, .at_call = 1, .kind = terse::fault_kind::silent, .delay = 1000ms});
        outcome o;
        allreduce_steps(f, 3, o);
        seen.set(t.rank(), o);
      },
      with_timeout(timeout));
  int timeouts = 0;
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    CHECK(seen[r].calls_done == 1);
    REQUIRE(seen[r].code.has_value());
    if (r == 1) {
      CHECK(*seen[r].code == terse::errc::timeout);
      CHECK(seen[r].seconds >= 1.0);
      continue;
    }
    // The first to give up names the timeout; the others may be woken by it.
    timeouts += *seen[r].code == terse::errc::timeout ? 1 : 0;
    CHECK((*seen[r].code == terse::errc::timeout || *seen[r].code == terse::errc::peer_failed));
    CHECK(seen[r].seconds < 0.8);  // timeout + slack, well before the silent rank wakes
  }
  CHECK(timeouts >= 1);
}

TEST_CASE("delay shorter than the timeout: every call succeeds")
{
  constexpr int world = 3;
  outcomes seen(world);
  std::vector<double> held(world, 0.0);
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        terse::faulty f(t,
                        terse::fault_plan{.rank = 2, .at_call = 0, .kind = terse::fault_kind::delay, .delay = 100ms});
        t.barrier();  // the undecorated transport: start the clocks together
        const auto start = clock_type::now();
        outcome o;
        allreduce_steps(f, 3, o);
        held[static_cast<std::size_t>(t.rank())] = seconds_since(start);
        CHECK(f.healthy());
        seen.set(t.rank(), o);
      },
      with_timeout(5s));
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    CHECK_FALSE(seen[r].code.has_value());
    CHECK(seen[r].calls_done == 3);
    CHECK(held[static_cast<std::size_t>(r)] >= 0.09);  // everyone waited for the delayed rank (minus jitter)
  }
}

TEST_CASE("delay longer than the timeout: peers time out, the late rank finds the world broken")
{
  constexpr int world = 3;
  outcomes seen(world);
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        terse::faulty f(t,
                        terse::fault_plan{.rank = 0, .at_call = 1, .kind = terse::fault_kind::delay, .delay = 700ms});
        outcome o;
        allreduce_steps(f, 2, o);
        seen.set(t.rank(), o);
      },
      with_timeout(200ms));
  int timeouts = 0;
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    CHECK(seen[r].calls_done == 1);
    REQUIRE(seen[r].code.has_value());
    if (r == 0) {
      CHECK(*seen[r].code == terse::errc::peer_failed);
      CHECK(seen[r].seconds >= 0.7);
      continue;
    }
    timeouts += *seen[r].code == terse::errc::timeout ? 1 : 0;
    CHECK(seen[r].seconds < 0.7);
  }
  CHECK(timeouts >= 1);
}

TEST_CASE("the default plan injects nothing")
{
  terse::run_local(2, [](terse::local_transport& t) {
    terse::faulty harmless(t);
    std::vector<float> v(4, 1.0f);
    harmless.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
    harmless.barrier();
    CHECK(v[0] == 2.0f);
    CHECK(harmless.calls() == 2);
    CHECK_FALSE(harmless.fired());
    CHECK(harmless.healthy());
  });
}

TEST_CASE("the call counter spans every verb: the fault lands on the broadcast")
{
  constexpr int world = 2;
  std::vector<std::string> messages(world);
  CHECK_THROWS_AS(terse::run_local(world,
                                   [&](terse::local_transport& t) {
                                     terse::faulty f(t, terse::fault_plan{.rank = 1, .at_call = 3});
                                     std::vector<float> v(4, 1.0f), w(4);
                                     const int other = 1 - t.rank();
                                     f.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
                                     f.barrier();
                                     f.sendrecv(terse::host_span<const float>(v), other, terse::host_span<float>(w),
                                                other, 0);
                                     try {
                                       f.broadcast(terse::host_span<float>(v), 0);
                                     } catch (const terse::error& e) {
                                       messages[static_cast<std::size_t>(t.rank())] = e.what();
                                       throw;
                                     }
                                   }),
                  terse::error);
  CHECK(messages[1].find("at call 3 (broadcast)") != std::string::npos);
  CHECK(messages[0].find("peer failed") != std::string::npos);
}

TEST_CASE("kill through a stack reaches the local transport's abort")
{
  constexpr int world = 3;
  outcomes seen(world);
  const auto start = clock_type::now();
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        terse::faulty<terse::metered<terse::local_transport&>> f(
            terse::metered<terse::local_transport&>(t),
            terse::fault_plan{.rank = 2, .at_call = 0, .kind = terse::fault_kind::kill});
        outcome o;
        allreduce_steps(f, 1, o);
        CHECK(f.inner().counts().total().calls == 0);  // nothing completed
        seen.set(t.rank(), o);
      },
      with_timeout(20s));
  CHECK(seconds_since(start) < 5.0);
  for (int r = 0; r < world; ++r) {
    REQUIRE(seen[r].code.has_value());
    CHECK(*seen[r].code == terse::errc::peer_failed);
  }
}

TEST_CASE("a fault plan prints")
{
  const terse::fault_plan plan{.rank = 3, .at_call = 7, .kind = terse::fault_kind::silent, .delay = 250ms};
  CHECK(terse::to_string(plan) == "fault_plan{rank 3, at call 7, silent, delay 250 ms}");
}

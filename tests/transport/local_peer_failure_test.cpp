// failure_scope::peer on the local transport: a dead rank fails only the
// messages that involve it, names itself in a terse::peer_error, and the
// survivors go on; world collectives still fail everywhere.
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

namespace {
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

terse::transport_options per_peer(std::chrono::milliseconds timeout = 5s)
{
  return {.timeout = timeout, .checked = true, .failures = terse::failure_scope::peer};
}

// Runs `body` and returns the peer named by the peer_error it raises (-1: none).
template <class Body>
int failed_peer(Body&& body, terse::errc expected = terse::errc::peer_failed)
{
  try {
    body();
  } catch (const terse::peer_error& e) {
    CHECK(e.code() == expected);
    return e.peer();
  }
  return -1;
}

void wait_for(const std::atomic<bool>& flag)
{
  while (!flag.load()) {
    std::this_thread::yield();
  }
}
}  // namespace

TEST_CASE("peer scope: a dead rank fails only what involves it; the survivors go on")
{
  constexpr int world = 4;
  std::atomic<bool> dead{false};
  std::vector<int> named_by_send(world, -2), named_by_recv(world, -2), named_by_allreduce(world, -2);
  std::vector<float> ring_sum(world, 0.0f);
  std::vector<float> last_words(world, 0.0f);
  const auto start = clock_type::now();
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        const auto r = static_cast<std::size_t>(t.rank());
        if (t.rank() == 1) {
          float words = 42.0f;  // sent before dying: still delivered
          t.send(terse::host_span<const float>(&words, 1), 0, 7);
          t.abort("rank 1 dies");
          dead = true;
          return;
        }
        wait_for(dead);
        CHECK(t.healthy());
        if (t.rank() == 0) {
          t.recv(terse::host_span<float>(&last_words[r], 1), 1, 7);
        }
        float x = 1.0f;
        named_by_send[r] = failed_peer([&] { t.send(terse::host_span<const float>(&x, 1), 1, 3); });
        named_by_recv[r] = failed_peer([&] { t.recv(terse::host_span<float>(&x, 1), 1, 3); });
        // The survivors 0, 2, 3 pass a token around a ring of their own.
        const std::array<int, 3> ring{0, 2, 3};
        const std::size_t at = t.rank() == 0 ? 0 : t.rank() == 2 ? 1 : 2;
        float mine = static_cast<float>(t.rank()), theirs = 0.0f;
        t.sendrecv(terse::host_span<const float>(&mine, 1), ring[(at + 1) % 3], terse::host_span<float>(&theirs, 1),
                   ring[(at + 2) % 3], 5);
        ring_sum[r] = mine + theirs;
        std::vector<float> v(4, 1.0f);
        named_by_allreduce[r] = failed_peer([&] { t.allreduce(terse::host_span<float>(v), terse::reduce_op::sum); });
      },
      per_peer());
  CHECK(clock_type::now() - start < 2s);  // nobody waited out the timeout
  CHECK(last_words[0] == 42.0f);
  for (int r : {0, 2, 3}) {
    const auto i = static_cast<std::size_t>(r);
    CHECK(named_by_send[i] == 1);
    CHECK(named_by_recv[i] == 1);
    CHECK(named_by_allreduce[i] == 1);
  }
  CHECK(ring_sum[0] == 0.0f + 3.0f);
  CHECK(ring_sum[2] == 2.0f + 0.0f);
  CHECK(ring_sum[3] == 3.0f + 2.0f);
}

TEST_CASE("peer scope: a grouped exchange reports the failed pairs and completes the others")
{
  constexpr int world = 4;
  std::atomic<bool> dead{false};
  std::vector<terse::exchange_report> reports(world);
  std::vector<std::array<float, 3>> got(world);
  std::vector<int> raised(world, -2);
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        if (t.rank() == 2) {
          t.abort("rank 2 dies");
          dead = true;
          return;
        }
        wait_for(dead);
        const auto r = static_cast<std::size_t>(t.rank());
        std::array<float, 3> out{};
        std::array<float, 3> in{-1.0f, -1.0f, -1.0f};
        std::vector<terse::outgoing<>> sends;
        std::vector<terse::incoming<>> recvs;
        std::vector<int> peers;
        for (int p = 0; p < world; ++p) {
          if (p != t.rank()) {
            peers.push_back(p);
          }
        }
        for (std::size_t k = 0; k < peers.size(); ++k) {
          out[k] = static_cast<float>(10 * t.rank() + peers[k]);
          sends.push_back({peers[k], terse::host_span<const std::byte>(reinterpret_cast<const std::byte*>(&out[k]),
                                                                       sizeof(float))});
        }
        // Receives in peer order too; each sender put 10 * sender + receiver in our slot.
        for (std::size_t k = 0; k < peers.size(); ++k) {
          recvs.push_back({peers[k], terse::host_span<std::byte>(reinterpret_cast<std::byte*>(&in[k]), sizeof(float))});
        }
        auto id = t.start_exchange(terse::host_span<const terse::outgoing<>>(sends),
                                   terse::host_span<const terse::incoming<>>(recvs), 9);
        t.wait(id, reports[r]);
        got[r] = in;
        // Without a report the same exchange raises, naming the dead rank.
        id = t.start_exchange(terse::host_span<const terse::outgoing<>>(sends),
                              terse::host_span<const terse::incoming<>>(recvs), 9);
        raised[r] = failed_peer([&] { t.wait(id); });
      },
      per_peer());
  for (int r : {0, 1, 3}) {
    const auto i = static_cast<std::size_t>(r);
    const std::size_t k2 = r < 2 ? 1 : 2;  // where rank 2 sits among this rank's peers
    CHECK(reports[i].failed_sends == std::vector<std::size_t>{k2});
    CHECK(reports[i].failed_recvs == std::vector<std::size_t>{k2});
    CHECK(got[i][k2] == -1.0f);  // untouched
    int peers_seen = 0;
    for (int p = 0; p < world; ++p) {
      if (p == r || p == 2) {
        continue;
      }
      const std::size_t k = static_cast<std::size_t>(p < r ? p : p - 1);
      CHECK(got[i][k] == static_cast<float>(10 * p + r));
      ++peers_seen;
    }
    CHECK(peers_seen == 2);
    CHECK(raised[i] == 2);
  }
}

TEST_CASE("peer scope: a silent peer fails its receive alone, within the deadline, and the world stays healthy")
{
  constexpr auto timeout = 200ms;
  std::atomic<bool> done{false};
  terse::run_local(
      3,
      [&](terse::local_transport& t) {
        if (t.rank() == 2) {
          wait_for(done);  // silent until the others are through
          return;
        }
        float x = 0.0f;
        const auto start = clock_type::now();
        CHECK(failed_peer([&] { t.recv(terse::host_span<float>(&x, 1), 2, 1); }, terse::errc::timeout) == 2);
        CHECK(clock_type::now() - start < timeout + 500ms);
        CHECK(t.healthy());
        float mine = static_cast<float>(t.rank() + 1);
        t.sendrecv(terse::host_span<const float>(&mine, 1), 1 - t.rank(), terse::host_span<float>(&x, 1), 1 - t.rank(),
                   2);
        CHECK(x == static_cast<float>(2 - t.rank()));
        if (t.rank() == 0) {
          done = true;
        }
      },
      per_peer(timeout));
}

TEST_CASE("world scope (the default) is unchanged: one dead rank fails every rank")
{
  std::atomic<int> peer_failed{0};
  try {
    terse::run_local(3,
                     [&](terse::local_transport& t) {
                       if (t.rank() == 1) {
                         throw std::runtime_error("rank 1 dies");
                       }
                       float x = 0.0f;
                       try {
                         t.recv(terse::host_span<float>(&x, 1), t.rank() == 0 ? 2 : 0, 1);
                       } catch (const terse::error& e) {
                         peer_failed += e.code() == terse::errc::peer_failed ? 1 : 0;
                       }
                     },
                     {.timeout = 5s});
  } catch (const std::runtime_error&) {
  }
  CHECK(peer_failed == 2);
}

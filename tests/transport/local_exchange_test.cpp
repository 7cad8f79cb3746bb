// Grouped exchanges on the local transport (core/exchange.hpp): exact bytes
// of an all-to-all for every world size, concurrent exchanges posted in
// different orders, polling, and every failure the contract names.
#include <terse/core/concepts.hpp>
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using terse::host_span;
using sends_span = host_span<const terse::outgoing<>>;
using recvs_span = host_span<const terse::incoming<>>;

static_assert(terse::concepts::exchanging_transport<terse::local_transport>);
static_assert(!terse::concepts::exchanging_transport<terse::local_transport, terse::memory_space::device>);

// Sizes include 0 (rank 0 to itself) and differ per direction.
std::size_t pair_size(int from, int to)
{
  return static_cast<std::size_t>((from * 5 + to * 3) % 23);
}

std::byte pair_byte(int from, int to, std::size_t i)
{
  return static_cast<std::byte>((from * 31 + to * 7 + static_cast<int>(i) * 13 + 1) & 0xff);
}

std::vector<std::byte> pattern(int from, int to)
{
  std::vector<std::byte> bytes(pair_size(from, to));
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = pair_byte(from, to, i);
  }
  return bytes;
}

// Every rank sends its pattern to every rank (itself included) in one
// exchange; returns whether every received byte was right.
bool all_to_all(terse::local_transport& t, int tag, bool poll)
{
  const int world = t.size();
  std::vector<std::vector<std::byte>> out(static_cast<std::size_t>(world)), in(static_cast<std::size_t>(world));
  std::vector<terse::outgoing<>> sends;
  std::vector<terse::incoming<>> recvs;
  for (int peer = 0; peer < world; ++peer) {
    const auto p = static_cast<std::size_t>(peer);
    out[p] = pattern(t.rank(), peer);
    in[p].assign(pair_size(peer, t.rank()), std::byte{0});
    sends.push_back({.peer = peer, .bytes = host_span<const std::byte>(out[p])});
    recvs.push_back({.peer = peer, .bytes = host_span<std::byte>(in[p])});
  }
  const terse::exchange_id id = t.start_exchange(sends_span(sends), recvs_span(recvs), tag);
  if (poll) {
    while (!t.test(id)) {
      std::this_thread::yield();
    }
  } else {
    t.wait(id);
  }
  for (int peer = 0; peer < world; ++peer) {
    if (in[static_cast<std::size_t>(peer)] != pattern(peer, t.rank())) {
      return false;
    }
  }
  return true;
}

terse::transport_options timeout_of(std::chrono::milliseconds timeout)
{
  return terse::transport_options{.timeout = timeout, .checked = true};
}

template <class Call>
terse::errc error_of(Call&& call)
{
  try {
    call();
  } catch (const terse::error& e) {
    return e.code();
  }
  return terse::errc::internal;
}

}  // namespace

TEST_CASE("an all-to-all in one exchange delivers every pair's exact bytes, for W = 1 .. 8")
{
  for (int world = 1; world <= 8; ++world) {
    for (const bool poll : {false, true}) {
      CAPTURE(world);
      CAPTURE(poll);
      std::vector<char> right(static_cast<std::size_t>(world), 0);
      terse::run_local(world, [&](terse::local_transport& t) {
        right[static_cast<std::size_t>(t.rank())] = all_to_all(t, 5, poll) && all_to_all(t, 5, poll);
      });
      CHECK(std::count(right.begin(), right.end(), 1) == world);
    }
  }
}

TEST_CASE("two exchanges with different tags complete whatever order the ranks post them in")
{
  constexpr int world = 4;
  std::vector<char> right(world, 0);
  terse::run_local(world, [&](terse::local_transport& t) {
    const int right_peer = (t.rank() + 1) % world;
    const int left_peer = (t.rank() + world - 1) % world;
    // Tag 1 goes right, tag 2 goes left, with different contents.
    const std::array<std::byte, 3> to_right{std::byte(t.rank()), std::byte(1), std::byte(10)};
    const std::array<std::byte, 2> to_left{std::byte(t.rank()), std::byte(2)};
    std::array<std::byte, 3> from_left{};
    std::array<std::byte, 2> from_right{};
    const std::array s1{terse::outgoing<>{right_peer, host_span<const std::byte>(to_right)}};
    const std::array r1{terse::incoming<>{left_peer, host_span<std::byte>(from_left)}};
    const std::array s2{terse::outgoing<>{left_peer, host_span<const std::byte>(to_left)}};
    const std::array r2{terse::incoming<>{right_peer, host_span<std::byte>(from_right)}};
    terse::exchange_id first{}, second{};
    if (t.rank() % 2 == 0) {
      first = t.start_exchange(sends_span(s1), recvs_span(r1), 1);
      second = t.start_exchange(sends_span(s2), recvs_span(r2), 2);
      t.wait(second);
      t.wait(first);
    } else {
      second = t.start_exchange(sends_span(s2), recvs_span(r2), 2);
      first = t.start_exchange(sends_span(s1), recvs_span(r1), 1);
      t.wait(first);
      t.wait(second);
    }
    right[static_cast<std::size_t>(t.rank())] =
        from_left == std::array{std::byte(left_peer), std::byte(1), std::byte(10)} &&
        from_right == std::array{std::byte(right_peer), std::byte(2)};
  });
  CHECK(std::count(right.begin(), right.end(), 1) == world);
}

TEST_CASE("messages of one (peer, tag) match in posting order, to a peer and to oneself")
{
  std::vector<char> right(2, 0);
  terse::run_local(2, [&](terse::local_transport& t) {
    const int other = 1 - t.rank();
    const std::array<std::byte, 2> a{std::byte(1), std::byte(2)};
    const std::array<std::byte, 3> b{std::byte(3), std::byte(4), std::byte(5)};
    std::array<std::byte, 2> peer_a{}, self_a{};
    std::array<std::byte, 3> peer_b{}, self_b{};
    const std::array sends{terse::outgoing<>{other, host_span<const std::byte>(a)},
                           terse::outgoing<>{t.rank(), host_span<const std::byte>(a)},
                           terse::outgoing<>{other, host_span<const std::byte>(b)},
                           terse::outgoing<>{t.rank(), host_span<const std::byte>(b)}};
    const std::array recvs{terse::incoming<>{other, host_span<std::byte>(peer_a)},
                           terse::incoming<>{other, host_span<std::byte>(peer_b)},
                           terse::incoming<>{t.rank(), host_span<std::byte>(self_a)},
                           terse::incoming<>{t.rank(), host_span<std::byte>(self_b)}};
    t.wait(t.start_exchange(sends_span(sends), recvs_span(recvs), 0));
    right[static_cast<std::size_t>(t.rank())] = peer_a == a && self_a == a && peer_b == b && self_b == b;
  });
  CHECK(right == std::vector<char>{1, 1});
}

TEST_CASE("empty messages still match, and an exchange with no messages completes at once")
{
  std::vector<char> right(3, 0);
  terse::run_local(3, [&](terse::local_transport& t) {
    std::vector<terse::outgoing<>> sends;
    std::vector<terse::incoming<>> recvs;
    for (int peer = 0; peer < t.size(); ++peer) {
      sends.push_back({peer, {}});
      recvs.push_back({peer, {}});
    }
    t.wait(t.start_exchange(sends_span(sends), recvs_span(recvs), 9));
    const terse::exchange_id nothing = t.start_exchange({}, {}, 9);
    right[static_cast<std::size_t>(t.rank())] = t.test(nothing);
  });
  CHECK(right == std::vector<char>{1, 1, 1});
}

TEST_CASE("test() is false until the peer posts, then true, and the id is spent")
{
  std::atomic<bool> tested_early{false};
  std::vector<terse::errc> after(2, terse::errc::internal);
  bool early = true;
  bool completed = false;
  std::byte received{0};
  terse::run_local(
      2,
      [&](terse::local_transport& t) {
        const std::array<std::byte, 1> mine{std::byte(42)};
        if (t.rank() == 0) {
          while (!tested_early.load()) {
            std::this_thread::sleep_for(1ms);
          }
          const std::array sends{terse::outgoing<>{1, host_span<const std::byte>(mine)}};
          t.wait(t.start_exchange(sends_span(sends), {}, 3));
          return;
        }
        std::array<std::byte, 1> theirs{};
        const std::array recvs{terse::incoming<>{0, host_span<std::byte>(theirs)}};
        const terse::exchange_id id = t.start_exchange({}, recvs_span(recvs), 3);
        early = t.test(id);
        tested_early = true;
        const auto give_up = clock_type::now() + 10s;
        while (!(completed = t.test(id)) && clock_type::now() < give_up) {
          std::this_thread::sleep_for(1ms);
        }
        received = theirs[0];
        after[0] = error_of([&] { (void)t.test(id); });
        after[1] = error_of([&] { t.wait(id); });
      },
      timeout_of(20s));
  CHECK_FALSE(early);
  CHECK(completed);
  CHECK(received == std::byte(42));
  CHECK(after[0] == terse::errc::invalid_argument);
  CHECK(after[1] == terse::errc::invalid_argument);
}

TEST_CASE("a silent peer is a timeout within the timeout plus 2 s, by wait and by test")
{
  for (const bool poll : {false, true}) {
    CAPTURE(poll);
    terse::errc code = terse::errc::internal;
    bool healthy_after = true;
    std::chrono::duration<double> took{};
    terse::run_local(
        2,
        [&](terse::local_transport& t) {
          if (t.rank() == 1) {
            return;  // never sends
          }
          std::array<std::byte, 4> theirs{};
          const std::array recvs{terse::incoming<>{1, host_span<std::byte>(theirs)}};
          const auto start = clock_type::now();
          code = error_of([&] {
            const terse::exchange_id id = t.start_exchange({}, recvs_span(recvs), 0);
            if (poll) {
              while (!t.test(id)) {
                std::this_thread::sleep_for(1ms);
              }
            } else {
              t.wait(id);
            }
          });
          took = clock_type::now() - start;
          healthy_after = t.healthy();
        },
        timeout_of(300ms));
    CHECK(code == terse::errc::timeout);
    CHECK_FALSE(healthy_after);
    CHECK(took.count() >= 0.29);
    CHECK(took.count() < 2.3);
  }
}

TEST_CASE("a peer that dies is peer_failed on the ranks waiting for it")
{
  std::vector<terse::errc> codes(3, terse::errc::internal);
  CHECK_THROWS_AS(terse::run_local(
                      3,
                      [&](terse::local_transport& t) {
                        if (t.rank() == 2) {
                          throw std::runtime_error("rank 2 dies");
                        }
                        std::array<std::byte, 4> theirs{};
                        const std::array recvs{terse::incoming<>{2, host_span<std::byte>(theirs)}};
                        codes[static_cast<std::size_t>(t.rank())] =
                            error_of([&] { t.wait(t.start_exchange({}, recvs_span(recvs), 0)); });
                      },
                      timeout_of(30s)),
                  std::runtime_error);
  CHECK(codes[0] == terse::errc::peer_failed);
  CHECK(codes[1] == terse::errc::peer_failed);
}

TEST_CASE("a message of another size is a mismatch on the receiver, which stays usable")
{
  std::vector<terse::errc> codes(2, terse::errc::internal);
  std::vector<char> later(2, 0);
  terse::run_local(2, [&](terse::local_transport& t) {
    const int other = 1 - t.rank();
    const std::vector<std::byte> mine(t.rank() == 0 ? 10 : 12, std::byte(7));
    std::vector<std::byte> theirs(12, std::byte(0));
    const std::array sends{terse::outgoing<>{other, host_span<const std::byte>(mine)}};
    const std::array recvs{terse::incoming<>{other, host_span<std::byte>(theirs)}};
    codes[static_cast<std::size_t>(t.rank())] =
        error_of([&] { t.wait(t.start_exchange(sends_span(sends), recvs_span(recvs), 4)); });
    later[static_cast<std::size_t>(t.rank())] = t.healthy() && all_to_all(t, 4, false);
  });
  CHECK(codes[0] == terse::errc::internal);  // rank 0 got its 12 bytes
  CHECK(codes[1] == terse::errc::mismatch);  // rank 1 was sent 10
  CHECK(later == std::vector<char>{1, 1});
}

TEST_CASE("invalid peers, tags and ids are invalid_argument")
{
  std::vector<std::vector<terse::errc>> codes(2);
  std::vector<char> healthy(2, 0);
  terse::run_local(2, [&](terse::local_transport& t) {
    std::array<std::byte, 1> buffer{};
    const std::array to_nobody{terse::outgoing<>{2, host_span<const std::byte>(buffer)}};
    const std::array from_nobody{terse::incoming<>{-1, host_span<std::byte>(buffer)}};
    auto& mine = codes[static_cast<std::size_t>(t.rank())];
    mine.push_back(error_of([&] { (void)t.start_exchange(sends_span(to_nobody), {}, 0); }));
    mine.push_back(error_of([&] { (void)t.start_exchange({}, recvs_span(from_nobody), 0); }));
    mine.push_back(error_of([&] { (void)t.start_exchange({}, {}, -1); }));
    mine.push_back(error_of([&] { (void)t.test(terse::exchange_id{12345}); }));
    mine.push_back(error_of([&] { t.wait(terse::exchange_id{}); }));
    healthy[static_cast<std::size_t>(t.rank())] = t.healthy();
  });
  for (const auto& rank_codes : codes) {
    CHECK(rank_codes == std::vector<terse::errc>(5, terse::errc::invalid_argument));
  }
  CHECK(healthy == std::vector<char>{1, 1});
}

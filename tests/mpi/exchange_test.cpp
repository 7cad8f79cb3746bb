// Grouped exchanges on mpi_transport (core/exchange.hpp), as real processes:
// an all-to-all of exact per-pair bytes in one exchange (chunked or not,
// checked or not), two exchanges posted in opposite orders on different
// ranks, a size mismatch that the receiver reports and survives, and
// test() polling.
#include <terse/core/concepts.hpp>

#include <array>
#include <thread>

#include "mpi_test_support.hpp"

using terse::host_span;
using sends_span = host_span<const terse::outgoing<>>;
using recvs_span = host_span<const terse::incoming<>>;

static_assert(terse::concepts::exchanging_transport<terse::mpi_transport>);

namespace {

// Sizes include 0 and differ per direction.
std::size_t pair_size(int from, int to)
{
  return static_cast<std::size_t>((from * 5 + to * 3) % 23);
}

std::byte pair_byte(int from, int to, std::size_t i)
{
  return static_cast<std::byte>((from * 31 + to * 7 + static_cast<int>(i) * 13 + 1) & 0xff);
}

std::vector<std::byte> pattern(int from, int to, std::size_t scale)
{
  std::vector<std::byte> bytes(pair_size(from, to) * scale);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = pair_byte(from, to, i);
  }
  return bytes;
}

// Every rank sends to every rank (itself included) in one exchange; true
// when every received byte is right. Sizes are pair_size * scale.
bool all_to_all(terse::mpi_transport& t, int tag, std::size_t scale, bool poll)
{
  const int world = t.size();
  const auto w = static_cast<std::size_t>(world);
  std::vector<std::vector<std::byte>> out(w), in(w);
  std::vector<terse::outgoing<>> sends;
  std::vector<terse::incoming<>> recvs;
  for (int peer = 0; peer < world; ++peer) {
    const auto p = static_cast<std::size_t>(peer);
    out[p] = pattern(t.rank(), peer, scale);
    in[p].assign(pair_size(peer, t.rank()) * scale, std::byte{0});
  }
  // Posted in a rank-dependent order: matching is by (peer, tag), not position.
  for (int k = 0; k < world; ++k) {
    const int peer = (t.rank() + k) % world;
    sends.push_back({peer, host_span<const std::byte>(out[static_cast<std::size_t>(peer)])});
    recvs.push_back({(t.rank() + world - k) % world,
                     host_span<std::byte>(in[static_cast<std::size_t>((t.rank() + world - k) % world)])});
  }
  const terse::exchange_id id = t.start_exchange(sends_span(sends), recvs_span(recvs), tag);
  if (poll) {
    while (!t.test(id)) {
      std::this_thread::yield();
    }
  } else {
    t.wait(id);
  }
  bool right = true;
  for (int peer = 0; peer < world; ++peer) {
    right = right && in[static_cast<std::size_t>(peer)] == pattern(peer, t.rank(), scale);
  }
  return right;
}

}  // namespace

TEST_CASE("an all-to-all in one exchange delivers every pair's exact bytes")
{
  for (const bool checked : {true, false}) {
    for (const std::size_t chunk : {terse::mpi_transport::default_max_chunk_elements, std::size_t{7}}) {
      CAPTURE(checked);
      CAPTURE(chunk);
      terse::mpi_transport t(MPI_COMM_WORLD, mpi_test::patient(checked));
      t.set_max_chunk_elements(chunk);
      CHECK(all_to_all(t, 3, 1, false));
      CHECK(all_to_all(t, 3, 1, true));
      CHECK(all_to_all(t, 4, 4096, false));  // up to 88 KiB: past the eager limit
      CHECK(t.healthy());
    }
  }
}

TEST_CASE("two exchanges with different tags complete whatever order the ranks post them in")
{
  for (const bool checked : {true, false}) {
    CAPTURE(checked);
    terse::mpi_transport t(MPI_COMM_WORLD, mpi_test::patient(checked));
    t.set_max_chunk_elements(5);
    const int world = t.size();
    const int right_peer = (t.rank() + 1) % world;
    const int left_peer = (t.rank() + world - 1) % world;
    // Tag 1 goes right, tag 2 goes left; two messages each, to check order too.
    std::vector<std::byte> to_right(12, std::byte(t.rank())), to_left(9, std::byte(100 + t.rank()));
    std::vector<std::byte> first_right(12), second_right(12), first_left(9), second_left(9);
    const std::array s1{terse::outgoing<>{right_peer, host_span<const std::byte>(to_right)},
                        terse::outgoing<>{right_peer, host_span<const std::byte>(to_left).subspan(0, 3)}};
    const std::array r1{terse::incoming<>{left_peer, host_span<std::byte>(first_right)},
                        terse::incoming<>{left_peer, host_span<std::byte>(second_right).subspan(0, 3)}};
    const std::array s2{terse::outgoing<>{left_peer, host_span<const std::byte>(to_left)},
                        terse::outgoing<>{left_peer, host_span<const std::byte>(to_right).subspan(0, 1)}};
    const std::array r2{terse::incoming<>{right_peer, host_span<std::byte>(first_left)},
                        terse::incoming<>{right_peer, host_span<std::byte>(second_left).subspan(0, 1)}};
    if (t.rank() % 2 == 0) {
      const terse::exchange_id a = t.start_exchange(sends_span(s1), recvs_span(r1), 1);
      const terse::exchange_id b = t.start_exchange(sends_span(s2), recvs_span(r2), 2);
      t.wait(b);
      t.wait(a);
    } else {
      const terse::exchange_id b = t.start_exchange(sends_span(s2), recvs_span(r2), 2);
      const terse::exchange_id a = t.start_exchange(sends_span(s1), recvs_span(r1), 1);
      t.wait(a);
      t.wait(b);
    }
    CHECK(first_right == std::vector<std::byte>(12, std::byte(left_peer)));
    CHECK(second_right[0] == std::byte(100 + left_peer));
    CHECK(second_right[2] == std::byte(100 + left_peer));
    CHECK(second_right[3] == std::byte(0));
    CHECK(first_left == std::vector<std::byte>(9, std::byte(100 + right_peer)));
    CHECK(second_left[0] == std::byte(right_peer));
  }
}

TEST_CASE("a message of another size is a mismatch on its receiver, and the transport stays usable")
{
  for (const bool checked : {true, false}) {
    for (const std::size_t sent : {std::size_t{6}, std::size_t{14}}) {
      CAPTURE(checked);
      CAPTURE(sent);
      terse::mpi_transport t(MPI_COMM_WORLD, mpi_test::patient(checked));
      const int world = t.size();
      const int next = (t.rank() + 1) % world;
      const int previous = (t.rank() + world - 1) % world;
      // Rank 0 sends `sent` bytes where 10 are expected; the others send 10.
      const std::vector<std::byte> out(t.rank() == 0 ? sent : 10, std::byte(5));
      std::vector<std::byte> in(10);
      const std::array sends{terse::outgoing<>{next, host_span<const std::byte>(out)}};
      const std::array recvs{terse::incoming<>{previous, host_span<std::byte>(in)}};
      const std::string got =
          mpi_test::outcome([&] { t.wait(t.start_exchange(sends_span(sends), recvs_span(recvs), 6)); });
      const int mismatched = world == 1 ? 0 : 1;
      CHECK(got == (t.rank() == mismatched ? mpi_test::name(terse::errc::mismatch) : "no error"));
      CHECK(t.healthy());
      CHECK(all_to_all(t, 6, 1, false));  // the mismatched message was consumed
    }
  }
}

TEST_CASE("test() is false until the peer posts, then true, and the id is spent")
{
  terse::mpi_transport t(MPI_COMM_WORLD, mpi_test::patient());
  const int world = t.size();
  if (world < 2) {
    return;
  }
  std::array<std::byte, 4> mine{std::byte(1), std::byte(2), std::byte(3), std::byte(4)};
  std::array<std::byte, 4> theirs{};
  if (t.rank() == 1) {
    const std::array recvs{terse::incoming<>{0, host_span<std::byte>(theirs)}};
    const terse::exchange_id id = t.start_exchange({}, recvs_span(recvs), 8);
    CHECK_FALSE(t.test(id));
    int go = 1;
    MPI_Send(&go, 1, MPI_INT, 0, 99, MPI_COMM_WORLD);  // only now may rank 0 send
    const auto give_up = mpi_test::clock::now() + std::chrono::seconds(10);
    bool completed = false;
    while (!(completed = t.test(id)) && mpi_test::clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(completed);
    CHECK(theirs == mine);
    CHECK(mpi_test::outcome([&] { (void)t.test(id); }) == mpi_test::name(terse::errc::invalid_argument));
    CHECK(mpi_test::outcome([&] { t.wait(id); }) == mpi_test::name(terse::errc::invalid_argument));
  } else if (t.rank() == 0) {
    int go = 0;
    MPI_Recv(&go, 1, MPI_INT, 1, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    const std::array sends{terse::outgoing<>{1, host_span<const std::byte>(mine)}};
    t.wait(t.start_exchange(sends_span(sends), {}, 8));
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_CASE("invalid peers and tags are invalid_argument on the calling rank")
{
  terse::mpi_transport t(MPI_COMM_WORLD, mpi_test::patient());
  std::array<std::byte, 1> buffer{};
  const std::array to_nobody{terse::outgoing<>{t.size(), host_span<const std::byte>(buffer)}};
  const std::array from_nobody{terse::incoming<>{-1, host_span<std::byte>(buffer)}};
  const std::string invalid = mpi_test::name(terse::errc::invalid_argument);
  CHECK(mpi_test::outcome([&] { (void)t.start_exchange(sends_span(to_nobody), {}, 0); }) == invalid);
  CHECK(mpi_test::outcome([&] { (void)t.start_exchange({}, recvs_span(from_nobody), 0); }) == invalid);
  CHECK(mpi_test::outcome([&] { (void)t.start_exchange({}, {}, -1); }) == invalid);
  CHECK(mpi_test::outcome([&] { (void)t.test(terse::exchange_id{777}); }) == invalid);
  CHECK(t.healthy());
}

TEST_CASE("a silent peer is a timeout on the exchange, which then breaks the transport")
{
  terse::mpi_transport t(MPI_COMM_WORLD, {.timeout = std::chrono::milliseconds(300), .checked = true});
  if (t.size() < 2) {
    return;
  }
  if (t.rank() == 0) {
    std::array<std::byte, 16> theirs{};
    const std::array recvs{terse::incoming<>{1, host_span<std::byte>(theirs)}};
    const auto start = mpi_test::clock::now();
    const terse::exchange_id id = t.start_exchange({}, recvs_span(recvs), 0);
    const terse::exchange_id other = t.start_exchange({}, recvs_span(recvs), 1);
    CHECK(mpi_test::outcome([&] { t.wait(id); }) == mpi_test::name(terse::errc::timeout));
    const double took = mpi_test::milliseconds_since(start);
    CHECK(took >= 290.0);
    CHECK(took < 2300.0);
    CHECK_FALSE(t.healthy());
    // The other exchange in flight was abandoned with it.
    CHECK(mpi_test::outcome([&] { (void)t.test(other); }) == mpi_test::name(terse::errc::peer_failed));
    CHECK(mpi_test::outcome([&] { (void)t.start_exchange({}, {}, 0); }) == mpi_test::name(terse::errc::peer_failed));
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

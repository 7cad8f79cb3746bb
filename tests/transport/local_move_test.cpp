// Data movement on the local transport: allgather(v), broadcast, send/recv.
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <numeric>
#include <vector>

TEST_CASE("allgather places rank r's block at r, also in place")
{
  for (int world = 1; world <= 8; ++world) {
    constexpr std::size_t block = 3;
    std::vector<std::vector<std::int64_t>> gathered(static_cast<std::size_t>(world));
    std::vector<std::vector<std::int64_t>> in_place(static_cast<std::size_t>(world));
    terse::run_local(world, [&](terse::local_transport& t) {
      const auto w = static_cast<std::size_t>(t.size());
      const auto r = static_cast<std::size_t>(t.rank());
      std::vector<std::int64_t> mine(block, static_cast<std::int64_t>(100 * t.rank()));
      mine[1] = -t.rank();
      std::vector<std::int64_t> out(block * w, -1);
      t.allgather(terse::host_span<const std::int64_t>(mine), terse::host_span<std::int64_t>(out));
      gathered[r] = out;

      std::vector<std::int64_t> shared(block * w, -1);
      std::copy(mine.begin(), mine.end(), shared.begin() + static_cast<std::ptrdiff_t>(block * r));
      auto own = terse::host_span<std::int64_t>(shared).subspan(block * r, block);
      t.allgather(terse::host_span<const std::int64_t>(own), terse::host_span<std::int64_t>(shared));
      in_place[r] = shared;
    });
    for (int r = 0; r < world; ++r) {
      for (int k = 0; k < world; ++k) {
        const auto at = static_cast<std::size_t>(k) * block;
        CHECK(gathered[static_cast<std::size_t>(r)][at] == 100 * k);
        CHECK(gathered[static_cast<std::size_t>(r)][at + 1] == -k);
        CHECK(in_place[static_cast<std::size_t>(r)] == gathered[static_cast<std::size_t>(r)]);
      }
    }
  }
}

TEST_CASE("allgatherv concatenates uneven blocks in rank order, zero-length ones too")
{
  constexpr int world = 5;
  const std::vector<std::size_t> counts{3, 0, 1, 4, 0};
  const std::size_t total = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
  std::vector<std::vector<std::uint8_t>> results(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    std::vector<std::uint8_t> mine(counts[r], static_cast<std::uint8_t>(10 + t.rank()));
    std::vector<std::uint8_t> out(total);
    t.allgatherv(terse::host_span<const std::uint8_t>(mine), terse::host_span<std::uint8_t>(out),
                 terse::host_span<const std::size_t>(counts));
    results[r] = out;
  });
  const std::vector<std::uint8_t> expected{10, 10, 10, 12, 13, 13, 13, 13};
  for (const auto& r : results) {
    CHECK(r == expected);
  }
}

TEST_CASE("broadcast from every root")
{
  constexpr int world = 4;
  for (int root = 0; root < world; ++root) {
    std::vector<std::vector<double>> results(world);
    terse::run_local(world, [&](terse::local_transport& t) {
      std::vector<double> buffer(1000, t.rank() == root ? 3.5 + root : -1.0);
      t.broadcast(terse::host_span<double>(buffer), root);
      results[static_cast<std::size_t>(t.rank())] = buffer;
    });
    for (const auto& r : results) {
      CHECK(r == std::vector<double>(1000, 3.5 + root));
    }
  }
}

TEST_CASE("send and recv keep per-tag order; a ring of sendrecv cannot deadlock")
{
  constexpr int world = 6;
  std::vector<std::vector<int>> received(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    const int right = (t.rank() + 1) % t.size();
    const int left = (t.rank() + t.size() - 1) % t.size();
    std::vector<std::int32_t> first{t.rank(), 1}, second{t.rank(), 2}, other_tag{t.rank(), 9};
    t.send(terse::host_span<std::int32_t>(first), right, 0);
    t.send(terse::host_span<std::int32_t>(other_tag), right, 5);
    t.send(terse::host_span<std::int32_t>(second), right, 0);
    std::vector<std::int32_t> a(2), b(2), c(2), ring(2);
    t.recv(terse::host_span<std::int32_t>(c), left, 5);  // a later tag can be taken first
    t.recv(terse::host_span<std::int32_t>(a), left, 0);
    t.recv(terse::host_span<std::int32_t>(b), left, 0);
    std::vector<std::int32_t> token{t.rank() * 100, 0};
    t.sendrecv(terse::host_span<const std::int32_t>(token), right, terse::host_span<std::int32_t>(ring), left, 1);
    received[static_cast<std::size_t>(t.rank())] = {a[0], a[1], b[1], c[1], ring[0]};
  });
  for (int r = 0; r < world; ++r) {
    const int left = (r + world - 1) % world;
    CHECK(received[static_cast<std::size_t>(r)] == std::vector<int>{left, 1, 2, 9, left * 100});
  }
}

TEST_CASE("a recv of the wrong size is a mismatch and the message is consumed")
{
  terse::run_local(2, [&](terse::local_transport& t) {
    if (t.rank() == 0) {
      std::vector<float> three(3, 1.0f), two(2, 2.0f);
      t.send(terse::host_span<float>(three), 1, 0);
      t.send(terse::host_span<float>(two), 1, 0);
    } else {
      std::vector<float> two(2);
      try {
        t.recv(terse::host_span<float>(two), 0, 0);
        FAIL("expected a mismatch");
      } catch (const terse::error& e) {
        CHECK(e.code() == terse::errc::mismatch);
        CHECK(std::string(e.what()).find("expected 2 elements") != std::string::npos);
      }
      std::vector<double> wrong_type(2);
      CHECK_NOTHROW(t.recv(terse::host_span<float>(two), 0, 0));
      CHECK(two[0] == 2.0f);
      CHECK(t.healthy());
    }
  });
}

// metered: exact per-rank byte counts for every verb, on the real local
// transport, with the data still moved correctly.
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace {

using terse::verb;

// The contract's table, written out independently of the library: blocks
// split n elements so that the first n % W get one more.
std::uint64_t own_block(std::uint64_t n, int world, int rank)
{
  const auto w = static_cast<std::uint64_t>(world);
  return n / w + (static_cast<std::uint64_t>(rank) < n % w ? 1 : 0);
}

std::vector<std::size_t> uneven_counts(int world, std::size_t n)
{
  std::vector<std::size_t> counts(static_cast<std::size_t>(world));
  for (int r = 0; r < world; ++r) {
    counts[static_cast<std::size_t>(r)] = (n + 3 * static_cast<std::size_t>(r)) % 7;
  }
  return counts;
}

}  // namespace

TEST_CASE("metered counts the contract's bytes per verb exactly, for 1 to 8 ranks")
{
  const std::vector<std::size_t> sizes{0, 1, 5, 64, 1001};
  for (int world = 1; world <= 8; ++world) {
    for (const std::size_t n : sizes) {
      CAPTURE(world);
      CAPTURE(n);
      const auto w = static_cast<std::uint64_t>(world);
      const int root = world - 1;
      const std::vector<std::size_t> counts = uneven_counts(world, n);
      const std::size_t total = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
      std::vector<terse::meter> meters(static_cast<std::size_t>(world));
      std::vector<int> data_ok(static_cast<std::size_t>(world), 0);

      terse::run_local(world, [&](terse::local_transport& t) {
        terse::metered m(t);
        const int r = t.rank();
        const auto ur = static_cast<std::size_t>(r);
        bool ok = true;

        std::vector<float> in(n, static_cast<float>(r + 1)), out(n);  // allreduce: 4-byte elements
        m.allreduce(terse::host_span<const float>(in), terse::host_span<float>(out), terse::reduce_op::sum);
        m.allreduce(terse::host_span<float>(in), terse::reduce_op::sum);  // in place
        const auto sum = static_cast<float>(world * (world + 1) / 2);
        for (std::size_t i = 0; i < n; ++i) {
          ok = ok && out[i] == sum && in[i] == sum;
        }

        std::vector<double> scatter_in(n * w, 1.0), scatter_out(n);  // reduce_scatter: N = input
        m.reduce_scatter(terse::host_span<const double>(scatter_in), terse::host_span<double>(scatter_out),
                         terse::reduce_op::sum);
        for (const double v : scatter_out) {
          ok = ok && v == static_cast<double>(world);
        }

        std::vector<std::int64_t> mine(n, r), gathered(n * w);  // allgather: N = output
        m.allgather(terse::host_span<const std::int64_t>(mine), terse::host_span<std::int64_t>(gathered));
        for (std::size_t i = 0; i < gathered.size(); ++i) {
          ok = ok && gathered[i] == static_cast<std::int64_t>(i / n);
        }

        std::vector<std::uint8_t> piece(counts[ur], static_cast<std::uint8_t>(r)), all(total);
        m.allgatherv(terse::host_span<const std::uint8_t>(piece), terse::host_span<std::uint8_t>(all),
                     terse::host_span<const std::size_t>(counts));
        std::size_t at = 0;
        for (int k = 0; k < world; ++k) {
          for (std::size_t i = 0; i < counts[static_cast<std::size_t>(k)]; ++i) {
            ok = ok && all[at++] == k;
          }
        }

        std::vector<terse::fp16> shared(n, terse::fp16(r == root ? 2.0f : 0.0f));  // broadcast: 2-byte elements
        m.broadcast(terse::host_span<terse::fp16>(shared), root);
        for (const auto v : shared) {
          ok = ok && static_cast<float>(v) == 2.0f;
        }

        // A ring: send to the right, recv from the left, then the same as one sendrecv.
        const int right = (r + 1) % world;
        const int left = (r + world - 1) % world;
        std::vector<std::int32_t> outgoing(n + 1, r), incoming(n + 1, -1), exchanged(n + 1, -1);
        m.send(terse::host_span<const std::int32_t>(outgoing), right, 0);
        m.recv(terse::host_span<std::int32_t>(incoming), left, 0);
        m.sendrecv(terse::host_span<const std::int32_t>(outgoing), right, terse::host_span<std::int32_t>(exchanged),
                   left, 1);
        ok = ok && incoming == std::vector<std::int32_t>(n + 1, left) && exchanged == incoming;

        m.barrier();
        meters[ur] = m.counts();
        data_ok[ur] = ok ? 1 : 0;
      });

      std::uint64_t allreduce_sent_by_all = 0;
      for (int r = 0; r < world; ++r) {
        CAPTURE(r);
        const terse::meter& got = meters[static_cast<std::size_t>(r)];
        CHECK(data_ok[static_cast<std::size_t>(r)] == 1);

        const std::uint64_t ring = 2 * (n - own_block(n, world, r)) * sizeof(float);
        CHECK(got[verb::allreduce] == terse::verb_meter{2, 2 * ring, 2 * ring});
        allreduce_sent_by_all += got[verb::allreduce].bytes_sent / 2;

        const std::uint64_t scattered = (w - 1) * n * sizeof(double);  // (W-1)/W of the W*n input
        CHECK(got[verb::reduce_scatter] == terse::verb_meter{1, scattered, scattered});

        const std::uint64_t gathered = (w - 1) * n * sizeof(std::int64_t);
        CHECK(got[verb::allgather] == terse::verb_meter{1, gathered, gathered});

        const std::uint64_t own = counts[static_cast<std::size_t>(r)];
        CHECK(got[verb::allgatherv] == terse::verb_meter{1, (w - 1) * own, total - own});

        const std::uint64_t broadcast = world == 1 ? 0 : n * sizeof(terse::fp16);
        CHECK(got[verb::broadcast] == terse::verb_meter{1, r == root ? broadcast : 0, r == root ? 0 : broadcast});

        const std::uint64_t message = (n + 1) * sizeof(std::int32_t);
        CHECK(got[verb::send] == terse::verb_meter{2, 2 * message, 0});  // send + the send half of sendrecv
        CHECK(got[verb::recv] == terse::verb_meter{2, 0, 2 * message});
        CHECK(got[verb::barrier] == terse::verb_meter{1, 0, 0});

        const terse::verb_meter sum = got.total();
        CHECK(sum.calls == 11);
        CHECK(sum.bytes_sent ==
              2 * ring + scattered + gathered + (w - 1) * own + (r == root ? broadcast : 0) + 2 * message);
      }
      // Summed over the ranks, allreduce moves exactly 2 (W-1)/W N each way.
      CHECK(allreduce_sent_by_all == 2 * (w - 1) * n * sizeof(float));
    }
  }
}

TEST_CASE("metered counts a call only when it returns")
{
  terse::transport_options options;
  options.checked = true;
  std::vector<terse::meter> meters(2);
  terse::run_local(
      2,
      [&](terse::local_transport& t) {
        terse::metered m(t);
        std::vector<float> v(t.rank() == 1 ? 3 : 4, 1.0f);
        CHECK_THROWS_AS(m.allreduce(terse::host_span<float>(v), terse::reduce_op::sum), terse::error);
        CHECK(m.counts() == terse::meter{});
        std::vector<float> ok(4, 1.0f);
        m.allreduce(terse::host_span<float>(ok), terse::reduce_op::sum);
        meters[static_cast<std::size_t>(t.rank())] = m.counts();
        m.reset();
        CHECK(m.counts().total().calls == 0);
      },
      options);
  for (const auto& m : meters) {
    CHECK(m[verb::allreduce] == terse::verb_meter{1, 2 * 2 * sizeof(float), 2 * 2 * sizeof(float)});
  }
}

TEST_CASE("a meter prints one line per verb called and a total")
{
  terse::meter m;
  m[verb::allreduce] = terse::verb_meter{2, 48, 48};
  m[verb::barrier].calls = 1;
  const std::string text = terse::to_string(m);
  CHECK(text ==
        "allreduce: 2 calls, 48 B sent, 48 B received\n"
        "barrier: 1 calls, 0 B sent, 0 B received\n"
        "total: 3 calls, 48 B sent, 48 B received\n");
}

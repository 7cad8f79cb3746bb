// simulated_network: the modelled alpha-beta times equal the contract's
// formulas, per-link bandwidths pick the slowest ring link or the p2p link,
// and the data still really moves.
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <numeric>
#include <vector>

namespace {

using terse::verb;

bool close(double got, double want)
{
  return std::abs(got - want) <= 1e-12 * std::max(std::abs(want), 1e-300);
}

int tree_steps(int world)
{
  int steps = 0;
  while ((1 << steps) < world) {
    ++steps;
  }
  return steps;
}

// The contract's modelled times, written out again here.
struct formulas {
  double alpha;
  double beta;  // over the ring
  int world;

  double allreduce(double n) const { return 2.0 * (world - 1) * alpha + 2.0 * (world - 1) / world * n * beta; }
  double ring(double n) const { return (world - 1) * alpha + static_cast<double>(world - 1) / world * n * beta; }
  double allgatherv(double spread) const { return (world - 1) * alpha + spread * beta; }
  double broadcast(double n) const { return world == 1 ? 0.0 : tree_steps(world) * alpha + n * beta; }
  double barrier() const { return tree_steps(world) * alpha; }
};

}  // namespace

TEST_CASE("modelled times equal the contract's formulas for 1 to 8 ranks")
{
  const auto model = terse::network_model{.latency_s = 7e-6, .bandwidth_bytes_per_s = 3e9};
  constexpr std::size_t n = 1000;
  for (int world = 1; world <= 8; ++world) {
    CAPTURE(world);
    const formulas f{model.latency_s, 1.0 / model.bandwidth_bytes_per_s, world};
    std::vector<std::size_t> counts(static_cast<std::size_t>(world));
    for (int r = 0; r < world; ++r) {
      counts[static_cast<std::size_t>(r)] = 10 + 5 * static_cast<std::size_t>(r);
    }
    const std::size_t total = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::simulated_network net(t, model);
      const auto w = static_cast<std::size_t>(world);
      const auto r = static_cast<std::size_t>(t.rank());

      std::vector<float> grad(n, 1.0f);
      net.allreduce(terse::host_span<float>(grad), terse::reduce_op::sum);
      CHECK(grad[n - 1] == static_cast<float>(world));  // the data moved
      CHECK(close(net.modelled_seconds(verb::allreduce), f.allreduce(4.0 * n)));

      std::vector<double> in(n * w, 1.0), block(n);
      net.reduce_scatter(terse::host_span<const double>(in), terse::host_span<double>(block), terse::reduce_op::sum);
      CHECK(close(net.modelled_seconds(verb::reduce_scatter), f.ring(8.0 * n * world)));

      std::vector<double> gathered(n * w);
      net.allgather(terse::host_span<const double>(block), terse::host_span<double>(gathered));
      CHECK(close(net.modelled_seconds(verb::allgather), f.ring(8.0 * n * world)));

      std::vector<float> piece(counts[r]), all(total);
      net.allgatherv(terse::host_span<const float>(piece), terse::host_span<float>(all),
                     terse::host_span<const std::size_t>(counts));
      CHECK(close(net.modelled_seconds(verb::allgatherv), f.allgatherv(4.0 * static_cast<double>(total - 10))));

      net.broadcast(terse::host_span<float>(grad), 0);
      CHECK(close(net.modelled_seconds(verb::broadcast), f.broadcast(4.0 * n)));

      net.barrier();
      CHECK(close(net.modelled_seconds(verb::barrier), f.barrier()));

      const int right = (t.rank() + 1) % world;
      const int left = (t.rank() + world - 1) % world;
      std::vector<float> message(300), reply(300);
      net.send(terse::host_span<const float>(message), right, 0);
      net.recv(terse::host_span<float>(reply), left, 0);
      CHECK(close(net.modelled_seconds(verb::send), f.alpha + 1200.0 * f.beta));
      CHECK(close(net.modelled_seconds(verb::recv), f.alpha + 1200.0 * f.beta));

      const double sum = f.allreduce(4.0 * n) + 2 * f.ring(8.0 * n * world) +
                         f.allgatherv(4.0 * static_cast<double>(total - 10)) + f.broadcast(4.0 * n) + f.barrier() +
                         2 * (f.alpha + 1200.0 * f.beta);
      CHECK(close(net.modelled_seconds(), sum));
      net.reset();
      CHECK(net.modelled_seconds() == 0.0);
    });
  }
}

TEST_CASE("per-link bandwidth: collectives run at the slowest ring link, p2p at its own link")
{
  constexpr int world = 4;
  constexpr double fast = 10e9;
  constexpr double alpha = 2e-6;
  terse::network_model model{.latency_s = alpha, .bandwidth_bytes_per_s = fast};
  model.link_bandwidth_bytes_per_s.assign(world * world, fast);
  const auto link = [&](int from, int to) -> double& {
    return model.link_bandwidth_bytes_per_s[static_cast<std::size_t>(from * world + to)];
  };
  link(2, 3) = 1e9;    // on the ring 0 -> 1 -> 2 -> 3 -> 0: the ring's slowest link
  link(1, 0) = 0.5e9;  // slower, but against the ring's direction: only p2p sees it
  link(0, 3) = 2e9;    // also against the ring

  terse::run_local(world, [&](terse::local_transport& t) {
    terse::simulated_network net(t, model);
    const formulas f{alpha, 1.0 / 1e9, world};
    std::vector<float> v(2500, 1.0f);  // 10 000 bytes
    net.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
    CHECK(close(net.modelled_seconds(verb::allreduce), f.allreduce(10000.0)));
    net.broadcast(terse::host_span<float>(v), 3);
    CHECK(close(net.modelled_seconds(verb::broadcast), f.broadcast(10000.0)));

    // Everyone sends to its left neighbour (rank 1 over the slow 1 -> 0 link).
    const int left = (t.rank() + world - 1) % world;
    const int right = (t.rank() + 1) % world;
    net.send(terse::host_span<const float>(v), left, 5);
    net.recv(terse::host_span<float>(v), right, 5);
    const double to_left = alpha + 10000.0 / link(t.rank(), left);
    const double from_right = alpha + 10000.0 / link(right, t.rank());
    CHECK(close(net.modelled_seconds(verb::send), to_left));
    CHECK(close(net.modelled_seconds(verb::recv), from_right));

    // sendrecv: both halves at once over different links, so the slower one
    // counts (rank 1's send half, rank 3's recv half), booked as send.
    net.reset();
    std::vector<float> reply(2500);
    net.sendrecv(terse::host_span<const float>(v), left, terse::host_span<float>(reply), right, 6);
    const double exchange = std::max(to_left, from_right);
    CHECK(close(net.modelled_seconds(verb::send), exchange));
    CHECK(net.modelled_seconds(verb::recv) == 0.0);
    CHECK(close(net.modelled_seconds(), exchange));
  });
}

TEST_CASE("two_level: the ring crosses the slow inter-node links")
{
  const auto model = terse::network_model::two_level(8, 4, 400e9, 25e9, 1e-6);
  CHECK(model.link_bandwidth(0, 3, 8) == 400e9);
  CHECK(model.link_bandwidth(3, 4, 8) == 25e9);
  terse::run_local(8, [&](terse::local_transport& t) {
    terse::simulated_network net(t, model);
    std::vector<float> v(1 << 12, 1.0f);
    net.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
    CHECK(close(net.modelled_seconds(), formulas{1e-6, 1.0 / 25e9, 8}.allreduce(4.0 * (1 << 12))));
  });
}

TEST_CASE("network_model helpers, presets and validation")
{
  CHECK(terse::network_model::gbps(10).bandwidth_bytes_per_s == 1.25e9);
  CHECK(terse::network_model::gbps(100, 5e-6).latency_s == 5e-6);
  CHECK(terse::network_model::ethernet_10g().bandwidth_bytes_per_s == 1.25e9);
  CHECK(terse::network_model::infiniband_hdr().bandwidth_bytes_per_s == 25e9);
  CHECK(terse::network_model::nvlink4().latency_s > 0.0);
  CHECK(terse::to_string(terse::network_model::gbps(8, 1e-3)) == "network_model{latency 0.001 s, bandwidth 1e+09 B/s}");

  terse::run_local(2, [](terse::local_transport& t) {
    terse::network_model wrong_shape = terse::network_model::gbps(10);
    wrong_shape.link_bandwidth_bytes_per_s.assign(3, 1e9);
    CHECK_THROWS_AS(terse::simulated_network(t, wrong_shape), terse::error);
    terse::network_model zero = terse::network_model::gbps(0);
    CHECK_THROWS_AS(terse::simulated_network(t, zero), terse::error);
    terse::simulated_network free_network(t);  // the default: no latency, infinite bandwidth
    std::vector<double> v(64, 1.0);
    free_network.allreduce(terse::host_span<double>(v), terse::reduce_op::sum);
    CHECK(free_network.modelled_seconds() == 0.0);
  });
}

TEST_CASE("wall_clock::follows_model makes each call last at least its modelled time")
{
  using clock_type = std::chrono::steady_clock;
  const auto model = terse::network_model{.latency_s = 0.05};
  terse::run_local(3, [&](terse::local_transport& t) {
    terse::simulated_network net(t, model, terse::wall_clock::follows_model);
    const auto start = clock_type::now();
    net.barrier();  // ceil(log2 3) = 2 steps of 50 ms
    const double waited = std::chrono::duration<double>(clock_type::now() - start).count();
    CHECK(net.modelled_seconds() == doctest::Approx(0.1));
    CHECK(waited >= 0.1);
  });
}

TEST_CASE("stacked: simulated_network over metered over local counts and charges the same calls")
{
  terse::run_local(4, [](terse::local_transport& t) {
    terse::simulated_network<terse::metered<terse::local_transport&>> net(terse::metered<terse::local_transport&>(t),
                                                                          terse::network_model::gbps(8));
    std::vector<float> v(1000, static_cast<float>(t.rank()));
    net.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
    net.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
    CHECK(v[999] == 24.0f);  // (0+1+2+3) * 4
    CHECK(net.inner().counts(verb::allreduce).calls == 2);
    CHECK(net.inner().counts(verb::allreduce).bytes_sent == 2 * 2 * 750 * sizeof(float));
    CHECK(close(net.modelled_seconds(), 2 * formulas{0.0, 1.0 / 1e9, 4}.allreduce(4000.0)));
  });
}

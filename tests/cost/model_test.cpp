// The cost model's arithmetic (terse/cost/model.hpp): the closed forms it
// promises, its plans byte for byte against terse::metered on the real
// allreduce, and its plain alpha-beta prices against the simulated_network
// decorator on the same steps. (Its agreement with SimGrid's SMPI is
// tests/smpi/cost_model_check.cpp.)
#include <terse/collective/allreduce.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/cost/model.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace terse;

bool close(double got, double want, double relative = 1e-12)
{
  return std::fabs(got - want) <= relative * std::max(std::fabs(want), 1e-30);
}

std::vector<float> gradient(int rank, std::size_t n)
{
  std::vector<float> g(n);
  for (std::size_t i = 0; i < n; ++i) {
    g[i] = 1e-3f * static_cast<float>((i * 7 + static_cast<std::size_t>(rank) * 13) % 101) - 0.05f;
  }
  return g;
}

/// One step of terse::allreduce with `codec` (+ residual when asked) over
/// `Decorated(local)`, after a warm-up step; `observe(decorated, rank)`
/// reads the decorator after the step.
template <class Codec, class Make, class Observe>
void one_step(int world, std::size_t n, const Codec& codec, bool residual, allreduce_config config, Make make,
              Observe observe)
{
  run_local(world, [&](local_transport& t) {
    auto net = make(t);
    std::vector<float> g = gradient(t.rank(), n);
    const auto run = [&](auto& sync) {
      sync.average(host_span<float>(g));
      net.reset();
      g = gradient(t.rank(), n);
      sync.average(host_span<float>(g));
    };
    if (residual) {
      allreduce sync(net, layout::single(n), config, codec, feedback::residual{});
      run(sync);
    } else {
      allreduce sync(net, layout::single(n), config, codec);
      run(sync);
    }
    observe(net, t.rank());
  });
}

/// Every rank's bytes sent in one step, as metered counts them.
template <class Codec>
std::vector<std::uint64_t> metered_bytes(int world, std::size_t n, const Codec& codec, bool residual,
                                         allreduce_config config = {})
{
  std::vector<std::uint64_t> sent(static_cast<std::size_t>(world));
  one_step(
      world, n, codec, residual, config, [](local_transport& t) { return metered<local_transport&>(t); },
      [&](const metered<local_transport&>& m, int rank) {
        sent[static_cast<std::size_t>(rank)] = m.counts().total().bytes_sent;
      });
  return sent;
}

/// The slowest rank's modelled seconds of one step under simulated_network.
template <class Codec>
double decorator_seconds(int world, std::size_t n, const Codec& codec, bool residual, const network_model& model,
                         allreduce_config config = {})
{
  std::vector<double> seconds(static_cast<std::size_t>(world));
  one_step(
      world, n, codec, residual, config,
      [&](local_transport& t) { return simulated_network<local_transport&>(t, model); },
      [&](const simulated_network<local_transport&>& net, int rank) {
        seconds[static_cast<std::size_t>(rank)] = net.modelled_seconds();
      });
  return *std::max_element(seconds.begin(), seconds.end());
}

template <class Codec>
void check_plan_matches_metered(int world, std::size_t n, const Codec& codec, bool residual,
                                sparse_aggregation sparse = sparse_aggregation::allgather)
{
  CAPTURE(world);
  CAPTURE(n);
  const cost::step_plan plan = cost::plan(world, n, codec, {.residual = residual, .sparse = sparse});
  const std::vector<std::uint64_t> sent = metered_bytes(world, n, codec, residual, {.sparse = sparse});
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    CHECK(plan.bytes_sent(r) == sent[static_cast<std::size_t>(r)]);
  }
}

}  // namespace

TEST_CASE("cost: the dense step on plain alpha-beta is 2 alpha + 2(W-1)/W N beta")
{
  const double alpha = 25e-6;
  const double beta = 8.0 / 10e9;
  const cost::cluster c = cost::cluster::flat(10.0, alpha);
  for (const int world : {2, 8, 64}) {
    const std::size_t n = std::size_t{1} << 20;  // a multiple of every W here
    const double bytes = 4.0 * static_cast<double>(n);
    const cost::prediction p = cost::predict_dense(c, world, n);
    CAPTURE(world);
    REQUIRE(p.phases.size() == 2);
    CHECK(close(p.seconds(), 2.0 * alpha + 2.0 * (world - 1.0) / world * bytes * beta));
    CHECK(p.phases[0].bytes_sent == (world - 1) * 4 * n / world);
    CHECK(p.compute_s() == 0.0);
    CHECK(p.polling_s() == 0.0);
  }
  CHECK(cost::predict_dense(c, 1, 1000).seconds() == 0.0);  // a world of one moves nothing
}

TEST_CASE("cost: each codec's closed form on plain alpha-beta")
{
  const double alpha = 10e-6;
  const double beta = 8.0 / 25e9;
  const cost::cluster c = cost::cluster::flat(25.0, alpha);
  const int world = 16;
  const std::size_t n = std::size_t{1} << 20;
  const double w = world;
  // cast_bf16: n bf16 values and one flag, reduce-scattered and allgathered
  // (n + 1 is not a multiple of W: rank 0's block is one value longer).
  const double bf16_block = 2.0 * static_cast<double>((n + 1) / world + 1);
  CHECK(close(cost::predict(c, world, n, compress::cast_bf16{}).seconds(),
              2.0 * alpha + 2.0 * (w - 1.0) * bf16_block * beta));
  // uniform<4>: every shard's frame (9-byte frame header + payload) to its owner, then the owners' frames to all.
  const compress::uniform<4> u4;
  const double frame = 9.0 + static_cast<double>(u4.max_encoded_bytes(n / world));
  CHECK(close(cost::predict(c, world, n, u4, {.residual = true}).seconds(),
              2.0 * alpha + 2.0 * (w - 1.0) * frame * beta));
  // top-k allgather: an 8-byte size, then the whole payload, to every rank.
  const compress::topk top{.density = 0.01f};
  const double payload = 9.0 + static_cast<double>(top.max_encoded_bytes(n));
  CHECK(close(cost::predict(c, world, n, top, {.residual = true}).seconds(),
              2.0 * alpha + (w - 1.0) * (8.0 + payload) * beta));
}

TEST_CASE("cost: a plan's bytes are what terse::metered counts on the real allreduce")
{
  for (const int world : {4, 5}) {
    for (const std::size_t n : {std::size_t{10007}, std::size_t{1} << 14}) {
      check_plan_matches_metered(world, n, compress::identity{}, false);
      check_plan_matches_metered(world, n, compress::cast_bf16{}, false);
      check_plan_matches_metered(world, n, compress::uniform<4>{}, true);
      check_plan_matches_metered(world, n, compress::uniform<8>{}, false);
      check_plan_matches_metered(world, n, compress::topk{.density = 0.01f}, true);
      check_plan_matches_metered(world, n, compress::topk{.density = 0.01f}, true, sparse_aggregation::reduce_scatter);
    }
  }
}

TEST_CASE("cost: plain alpha-beta prices each step as the simulated_network decorator charges it")
{
  const network_model model = network_model::gbps(10.0, 25e-6);
  const cost::cluster c = cost::cluster::from(model);
  const int world = 8;
  SUBCASE("n a multiple of W: every rank alike, equal")
  {
    const std::size_t n = std::size_t{1} << 16;
    CHECK(close(cost::predict_dense(c, world, n).seconds(),
                decorator_seconds(world, n, compress::identity{}, false, model), 1e-9));
    CHECK(close(cost::predict(c, world, n, compress::cast_bf16{}).seconds(),
                decorator_seconds(world, n, compress::cast_bf16{}, false, model), 1e-9));
    CHECK(close(cost::predict(c, world, n, compress::uniform<4>{}, {.residual = true}).seconds(),
                decorator_seconds(world, n, compress::uniform<4>{}, true, model), 1e-9));
    CHECK(close(cost::predict(c, world, n, compress::topk{.density = 0.01f}, {.residual = true}).seconds(),
                decorator_seconds(world, n, compress::topk{.density = 0.01f}, true, model), 1e-9));
  }
  SUBCASE("uneven blocks: the model takes each phase's slowest rank, never less than any rank's total")
  {
    const std::size_t n = 10007;
    const double dense = decorator_seconds(world, n, compress::identity{}, false, model);
    CHECK(cost::predict_dense(c, world, n).seconds() >= dense * (1.0 - 1e-12));
    CHECK(close(cost::predict_dense(c, world, n).seconds(), dense, 1e-3));
    const double u4 = decorator_seconds(world, n, compress::uniform<4>{}, true, model);
    CHECK(cost::predict(c, world, n, compress::uniform<4>{}, {.residual = true}).seconds() >= u4 * (1.0 - 1e-12));
    CHECK(close(cost::predict(c, world, n, compress::uniform<4>{}, {.residual = true}).seconds(), u4, 1e-3));
  }
}

TEST_CASE("cost: the SMPI preset's dense step in closed form")
{
  // cluster_10g: 25 us links (alpha = 50 us), 10 Gb/s; 2 MiB per message is
  // in SMPI's last size band (latency x 11.6436, bandwidth x 0.940694), and
  // cross-traffic makes each byte cost 1.05.
  const cost::cluster c = cost::cluster::cluster_10g();
  const int world = 8;
  const std::size_t n = std::size_t{1} << 22;
  const double message = 4.0 * static_cast<double>(n) / world;
  const double network = 11.6436 * 50e-6 + (world - 1) * message * 1.05 / (0.940694 * 1.25e9);
  // Polling: the 2(W - 1) requests (none eager at 2 MiB) are swept until the
  // flows finish together; the last sweep takes 14 us, and after 256 sweeps
  // the transport sleeps 16 us between sweeps (on average 16^2 / (2 (14 + 16)) us more).
  const double polling = 14e-6 + 16e-6 * 16e-6 / (2.0 * 30e-6);
  const cost::prediction p = cost::predict_dense(c, world, n);
  CHECK(close(p.phases[0].network_s, network, 1e-12));
  CHECK(close(p.phases[0].polling_s, polling, 1e-9));
  CHECK(close(p.seconds(), 2.0 * (network + polling), 1e-9));
}

TEST_CASE("cost: polling when the first sweep outlasts the messages")
{
  // alpha 9.5 us, infinite bandwidth, 1 us per test, every send eager: W = 8
  // posts 7 sends then 7 receives; the receives tested at 8 and 9 us are not
  // there yet (9.5 us) and are tested again after the first sweep (14 us).
  cost::cluster c = cost::cluster::flat(0.0, 9.5e-6);
  c.levels[0].bandwidth_bytes_per_s = std::numeric_limits<double>::infinity();
  c.poll = {.test_s = 1e-6, .eager_below_bytes = 1 << 20};
  const cost::prediction p = cost::predict_dense(c, 8, 64);
  CHECK(close(p.phases[0].network_s, 9.5e-6));
  CHECK(close(p.phases[0].seconds(), 16e-6, 1e-9));
}

TEST_CASE("cost: a shared outer link carries every byte leaving its group")
{
  // Two nodes of four ranks; free links inside, one NIC of B per node with
  // latency alpha. Dense, n a multiple of 8: each message is n/2 bytes and
  // 4 x 4 of them leave each node per phase.
  const double bandwidth = 12.5e9;
  const double alpha = 20e-6;
  const cost::cluster c{.levels = {{.ranks_per_link = 1, .latency_s = 0.0},
                                   {.ranks_per_link = 4, .latency_s = alpha, .bandwidth_bytes_per_s = bandwidth}}};
  const std::size_t n = std::size_t{1} << 20;
  const double message = 4.0 * static_cast<double>(n) / 8.0;
  CHECK(close(cost::predict_dense(c, 8, n).seconds(), 2.0 * (alpha + 16.0 * message / bandwidth)));
  // One node: nothing leaves it, only the inner level counts (free here).
  CHECK(cost::predict_dense(c, 4, n).seconds() == 0.0);
}

namespace {
// A low-rank codec shaped like PowerSGD (which needs BLAS): its own two
// allreduces of the factors P (m x k, plus a flag) and Q (p x k).
struct low_rank {
  struct shape_type {
    std::uint64_t m, p, k;
    std::uint64_t factor_count() const { return k * (m + p); }
  };
  static constexpr aggregation aggregation_kind = aggregation::summable;
  shape_type shape(std::size_t n) const
  {
    const auto p = static_cast<std::uint64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
    return {(n + p - 1) / p, p, 2};
  }
};
// The same, reducing in parts: the collective runs its averages as its own exchanges.
struct low_rank_in_parts : low_rank {
  terse::host_span<float> reduce_first(const terse::codec_context&, terse::host_span<const float>) { return {}; }
  terse::host_span<float> reduce_second(const terse::codec_context&, terse::host_span<const float>) { return {}; }
  void reduce_last(const terse::codec_context&, terse::host_span<float>) {}
};
static_assert(terse::concepts::staged_reducing_compressor<low_rank_in_parts>);
}  // namespace

TEST_CASE("cost: a self-reducing codec runs two allreduces of its factors")
{
  const cost::step_plan plan = cost::plan(4, 1 << 20, low_rank{});
  REQUIRE(plan.phases.size() == 4);
  // m = p = 1024, k = 2: P has 2049 floats with the flag, Q 2048.
  CHECK(plan.phases[0].name == "P reduce-scatter");
  CHECK(plan.phases[0].bytes[0] == 4 * 513);
  CHECK(plan.phases[1].bytes[3] == 4 * 512);
  CHECK(plan.phases[2].bytes[0] == 4 * 512);
  CHECK(plan.phases[3].receives_first);
  CHECK(plan.bytes_sent(0) == 4 * ((2049 - 513) + 3 * 513 + (2048 - 512) + 3 * 512));

  // In parts (compress::powersgd): the same messages, sends posted first.
  // Speeds given (network only all the same): g++ 12 at -O1 with ASan
  // otherwise warns that the unset optional may be read uninitialized.
  const cost::step_options network_only{.speed = cost::codec_speed{}};
  const cost::step_plan parts = cost::plan(4, 1 << 20, low_rank_in_parts{}, network_only);
  REQUIRE(parts.phases.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(parts.phases[i].bytes == plan.phases[i].bytes);
    CHECK(!parts.phases[i].receives_first);
  }
}

TEST_CASE("cost: the compute term at the measured speeds")
{
  const cost::cluster c = cost::cluster::flat(10.0, 0.0);
  const std::size_t n = std::size_t{1} << 20;
  const double bytes = 4.0 * static_cast<double>(n);
  const double memory = cost::measured::memory_bytes_per_s;
  // Dense: the fold of the W contributions, then the copy that commits.
  const cost::prediction dense = cost::predict_dense(c, 8, n, {.compute = true});
  CHECK(close(dense.compute_s(), 2.0 * bytes / memory));
  // uniform<4> with residual: fused encode; the owner zeroes its sum,
  // decodes, averages and re-encodes its shard; every rank zeroes the
  // result, decodes the W shards and commits.
  const cost::codec_speed s = *cost::measured_speed(compress::uniform<4>{});
  const cost::prediction u4 = cost::predict(c, 8, n, compress::uniform<4>{}, {.compute = true, .residual = true});
  CHECK(close(u4.compute_s(), bytes / s.encode_residual_bytes_per_s + bytes / s.decode_bytes_per_s +
                                  1.5 * bytes / 8 / memory + bytes / 8 / s.encode_bytes_per_s +
                                  bytes / s.decode_bytes_per_s + 1.5 * bytes / memory));
  // Network only by default.
  CHECK(cost::predict(c, 8, n, compress::uniform<4>{}).compute_s() == 0.0);
}

TEST_CASE("cost: compression pays on a slow network, not always on a fast one")
{
  const std::size_t n = std::size_t{1} << 22;
  const cost::comparison slow =
      cost::compare(cost::cluster::flat(1.0, 50e-6), 8, n, compress::uniform<4>{}, {.compute = true, .residual = true});
  CHECK(slow.speedup() > 4.0);
  const cost::comparison fast = cost::compare(cost::cluster::flat(400.0, 2e-6), 8, n, compress::uniform<4>{},
                                              {.compute = true, .residual = true});
  CHECK(fast.speedup() < 1.0);  // encoding and decoding 16 MiB on one core outlast the transfer saved
}

TEST_CASE("cost: invalid descriptions are refused, saying what to fix")
{
  CHECK_THROWS_AS(cost::predict_dense(cost::cluster{.levels = {}}, 8, 100), error);
  cost::cluster unsorted = cost::cluster::cluster_10g();
  std::swap(unsorted.size_factors[1], unsorted.size_factors[2]);
  CHECK_THROWS_AS(cost::predict_dense(unsorted, 8, 100), error);
  const cost::cluster nested{.levels = {{.ranks_per_link = 3}, {.ranks_per_link = 4}}};
  CHECK_THROWS_AS(cost::predict_dense(nested, 8, 100), error);
  // No measured speed for uniform<4> with a custom bucket? It has one; a codec without is refused when compute is on.
  CHECK_THROWS_WITH_AS(cost::plan(8, 100, low_rank{}, {.compute = true}), doctest::Contains("speed was not measured"),
                       error);
  CHECK_NOTHROW(cost::plan(8, 100, low_rank{}));
  CHECK_THROWS_AS(cost::cluster::from(network_model::two_level(8, 4, 1e10, 1e9)), error);
}

TEST_CASE("cost: the docs/simulation.md snippets compile and answer")
{
  // docs/simulation.md, "Describe your cluster" and "Ask the model" (the same lines).
  const terse::cost::cluster mine = terse::cost::cluster::flat(/*gigabits_per_s=*/25.0, /*latency_s=*/20e-6);
  const terse::cost::cluster nodes{
      .levels = {{.ranks_per_link = 1, .latency_s = 3e-6, .bandwidth_bytes_per_s = 450e9},
                 {.ranks_per_link = 8, .latency_s = 10e-6, .bandwidth_bytes_per_s = 25e9}}};
  const terse::cost::comparison c =
      terse::cost::compare(mine, /*world=*/64, /*n=*/std::size_t{1} << 22, terse::compress::uniform<4>{},
                           terse::cost::step_options{.compute = true, .residual = true});
  std::ostringstream out;
  out << c.dense << '\n' << c.compressed << "\nspeedup " << c.speedup() << '\n';
  CHECK(out.str().find("owners to all") != std::string::npos);
  CHECK(c.speedup() == doctest::Approx(0.89).epsilon(0.01));
  // Eight GPUs behind one NIC: each dense phase is bound by the NIC, which
  // carries 8 ranks x 56 peers outside the node x 256 KiB (alpha 3 + 10 us).
  CHECK(close(cost::predict_dense(nodes, 64, std::size_t{1} << 22).seconds(),
              2.0 * (13e-6 + 8.0 * 56.0 * 262144.0 / 25e9), 1e-12));
}

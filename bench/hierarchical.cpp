// The hierarchical allreduce against the flat one on a modelled cluster of
// multi-GPU nodes: W = 32 in-process ranks, nodes of 8, 100 Gb/s links
// inside a node and 10 Gb/s between nodes (network_model::two_level), 25 us
// per message, dense and with uniform<4> + residual feedback.
//
// Each row runs a warm-up step and a measured step of both collectives in
// the same run and reports the slowest rank's modelled communication time
// for each and their ratio (hierarchical / flat), with the bytes the
// slowest rank sent between nodes. The hierarchical step's time is its
// group's modelled time plus its cross-group time (the three phases run one
// after another).
//
//   bench_hierarchical --benchmark_format=json
#include <terse/collective/allreduce.hpp>
#include <terse/collective/hierarchical.hpp>
#include <terse/compress/identity.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace {

constexpr int world_size = 32;
constexpr int node_size = 8;
constexpr double latency_s = 25e-6;

terse::network_model cluster()
{
  return terse::network_model::two_level(world_size, node_size, 100e9 / 8.0, 10e9 / 8.0, latency_s);
}

struct figures {
  double seconds = 0;             // the slowest rank's modelled time
  std::uint64_t inter_bytes = 0;  // the most any rank sent between nodes
};

void fill(std::vector<float>& values, int rank)
{
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = 1e-3f * static_cast<float>((i * 7 + static_cast<std::size_t>(rank) * 3) % 19) - 0.009f;
  }
}

std::uint64_t bytes_off_node(const terse::verb_meter& total)
{
  return total.bytes_sent;
}

template <class... Policies>
figures flat(std::size_t count, Policies... policies)
{
  figures out;
  std::mutex lock;
  terse::run_local(world_size, [&](terse::local_transport& local) {
    terse::metered meter(local);
    terse::simulated_network net(meter, cluster());
    terse::allreduce sync(net, terse::layout::single(count), policies...);
    std::vector<float> values(count);
    fill(values, local.rank());
    sync.average(terse::host_span<float>(values));
    net.reset();
    meter.reset();
    fill(values, local.rank());
    sync.average(terse::host_span<float>(values));
    // The flat step sends equal-sized messages to every other rank, so the
    // share of its bytes that leaves the node is (W - node) / (W - 1).
    const double inside = static_cast<double>(node_size - 1) / static_cast<double>(world_size - 1);
    const auto across =
        static_cast<std::uint64_t>(static_cast<double>(bytes_off_node(meter.counts().total())) * (1.0 - inside));
    const std::lock_guard guard(lock);
    out.seconds = std::max(out.seconds, net.modelled_seconds());
    out.inter_bytes = std::max(out.inter_bytes, across);
  });
  return out;
}

template <class... Policies>
figures hierarchical(std::size_t count, Policies... policies)
{
  figures out;
  std::mutex lock;
  terse::run_local(world_size, [&](terse::local_transport& local) {
    terse::metered meter(local);
    terse::simulated_network net(meter, cluster());
    terse::hierarchical_allreduce sync(net, terse::groups::of_size(node_size), terse::layout::single(count),
                                       policies...);
    std::vector<float> values(count);
    fill(values, local.rank());
    sync.average(terse::host_span<float>(values));
    sync.group().reset();
    sync.cross().reset();
    sync.group().inner().reset();
    sync.cross().inner().reset();
    fill(values, local.rank());
    sync.average(terse::host_span<float>(values));
    const double seconds = sync.group().modelled_seconds() + sync.cross().modelled_seconds();
    const std::uint64_t across = sync.cross().inner().counts().total().bytes_sent;
    const std::lock_guard guard(lock);
    out.seconds = std::max(out.seconds, seconds);
    out.inter_bytes = std::max(out.inter_bytes, across);
  });
  return out;
}

template <class... Policies>
void compare(benchmark::State& state, Policies... policies)
{
  const auto count = static_cast<std::size_t>(state.range(0));
  figures f, h;
  for (auto _ : state) {
    f = flat(count, policies...);
    h = hierarchical(count, policies...);
    state.SetIterationTime(h.seconds);
  }
  state.counters["W"] = world_size;
  state.counters["ranks_per_node"] = node_size;
  state.counters["n"] = static_cast<double>(count);
  state.counters["flat_ms"] = f.seconds * 1e3;
  state.counters["hierarchical_ms"] = h.seconds * 1e3;
  state.counters["time_ratio_hierarchical_vs_flat"] = h.seconds / f.seconds;
  state.counters["flat_inter_node_bytes"] = static_cast<double>(f.inter_bytes);
  state.counters["hierarchical_inter_node_bytes"] = static_cast<double>(h.inter_bytes);
}

}  // namespace

int main(int argc, char** argv)
{
  for (auto* rows : {benchmark::RegisterBenchmark("hierarchical/dense", [](benchmark::State& s) { compare(s); }),
                     benchmark::RegisterBenchmark("hierarchical/uniform4_residual", [](benchmark::State& s) {
                       compare(s, terse::compress::uniform<4>{}, terse::feedback::residual{});
                     })}) {
    rows->Arg(std::int64_t{1} << 16)->Arg(std::int64_t{1} << 20)->ArgNames({"n"});
    rows->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

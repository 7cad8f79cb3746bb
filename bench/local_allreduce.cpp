// Allreduce throughput of the local transport (W ranks = W threads) against
// memcpy of the same buffer, 1 KiB .. 256 MiB, W = 2, 4, 8. Throughput is
// buffer bytes per second of wall time (algorithm bandwidth).
#include <terse/transport/local.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "bench_support.hpp"

namespace {

// One world per W, shared by the benchmark threads (thread index = rank).
// Google Benchmark runs every thread for the same number of iterations, so
// the ranks' collective calls always pair up.
terse::local_world& world_of(int size)
{
  static std::mutex guard;
  static std::map<int, std::unique_ptr<terse::local_world>> worlds;
  const std::lock_guard lock(guard);
  auto& world = worlds[size];
  if (!world) {
    world = std::make_unique<terse::local_world>(size);
  }
  return *world;
}

void local_allreduce(benchmark::State& state)
{
  const auto bytes = static_cast<std::size_t>(state.range(0));
  terse::local_transport transport = world_of(state.threads()).transport(state.thread_index());
  std::vector<float> buffer(bytes / sizeof(float), 1.0f);
  const terse::host_span<float> view(buffer);
  for (auto _ : state) {
    transport.allreduce(view, terse::reduce_op::sum);
    benchmark::ClobberMemory();
  }
  // Every rank reports the buffer: Google Benchmark divides the summed
  // bytes by the summed thread time, which gives buffer bytes per second.
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

}  // namespace

BENCHMARK(terse::bench::memcpy_reference)->Apply(terse::bench::buffer_sizes);
BENCHMARK(local_allreduce)->Apply(terse::bench::buffer_sizes)->Threads(2)->Threads(4)->Threads(8)->UseRealTime();

BENCHMARK_MAIN();

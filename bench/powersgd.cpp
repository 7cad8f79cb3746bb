// compress::powersgd on the host: encode and decode (byte interface) and one
// reduce step over a local world of one rank, on 2^24 and 2^26 floats,
// beside memcpy of the same buffer. OpenBLAS runs one thread unless
// OPENBLAS_NUM_THREADS says otherwise, so everything runs on the calling
// thread and its CPU time (Google Benchmark's default) is the work done,
// honest even when other jobs share the cores; it is one core against
// memcpy's one core.
#include <terse/compress/powersgd.hpp>
#include <terse/transport/local.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "codec_bench_support.hpp"

namespace {

void reduce_one_rank(benchmark::State& state, std::uint32_t rank)
{
  const auto n = static_cast<std::size_t>(state.range(0)) / sizeof(float);
  terse::local_world world(1);
  terse::local_transport t = world.transport(0);
  terse::compress::powersgd codec{.rank = rank};
  auto values = terse::bench::bench_gradient(n);
  terse::codec_context ctx;
  for (auto _ : state) {
    // Each step replaces the values with their approximation; the cost does
    // not depend on the numbers.
    codec.reduce(ctx, t, terse::host_span<float>(values));
    benchmark::DoNotOptimize(values.data());
    ++ctx.step;
  }
  state.SetBytesProcessed(state.range(0) * static_cast<std::int64_t>(state.iterations()));
  const auto s = codec.shape(n);
  state.counters["ratio"] = static_cast<double>(n) / static_cast<double>(s.k * (s.m + s.p) + 1);
}

}  // namespace

int main(int argc, char** argv)
{
#if defined(OPENBLAS_VERSION)
  if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr) {
    openblas_set_num_threads(1);
  }
#endif
  terse::bench::register_memcpy_references();
  for (const std::uint32_t rank : {2u, 4u}) {
    const std::string name = "powersgd<" + std::to_string(rank) + ">";
    terse::bench::register_codec(name, [rank] { return terse::compress::powersgd{.rank = rank}; });
    for (std::size_t n : terse::bench::codec_sizes) {
      benchmark::RegisterBenchmark((name + "/reduce").c_str(), reduce_one_rank, rank)
          ->Arg(static_cast<std::int64_t>(4 * n));
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

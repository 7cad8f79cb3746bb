// Host throughput of compress::sign, compress::terngrad and compress::randomk
// (encode, decode, fused residual encode) on 2^24 and 2^26 floats beside
// memcpy of the same buffer; plus random-k's index sampling on its own
// (Floyd + radix sort, O(k)), which encode pays once per step.
#include <terse/compress/randomk.hpp>
#include <terse/compress/sign.hpp>
#include <terse/compress/terngrad.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>

#include "codec_bench_support.hpp"

namespace {

void randomk_sample(benchmark::State& state, double density)
{
  const auto n = static_cast<std::size_t>(state.range(0)) / sizeof(float);
  terse::compress::randomk codec{.density = density};
  terse::codec_context ctx;
  for (auto _ : state) {
    benchmark::DoNotOptimize(codec.indices(ctx, n).data());
    ++ctx.step;
  }
  state.SetBytesProcessed(state.range(0) * static_cast<std::int64_t>(state.iterations()));
  state.counters["k"] = static_cast<double>(codec.wire_count(n));
}

}  // namespace

int main(int argc, char** argv)
{
  using namespace terse::compress;
  terse::bench::register_memcpy_references();
  terse::bench::register_codec("sign", [] { return sign{}; });
  terse::bench::register_codec("terngrad", [] { return terngrad{}; });
  for (const double density : {0.01, 0.001}) {
    const std::string name = "randomk<" + std::to_string(density).substr(0, 5) + ">";
    terse::bench::register_codec(name, [density] { return randomk{.density = density}; });
    for (std::size_t n : terse::bench::codec_sizes) {
      benchmark::RegisterBenchmark((name + "/sample").c_str(), randomk_sample, density)
          ->Arg(static_cast<std::int64_t>(4 * n));
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// cuda::powersgd_state::reduce (cuBLAS products, Gram–Schmidt kernel) on
// one GPU with a one-rank device transport (no communication: the codec's
// own cost), on 2^24 and 2^26 floats at rank 2 and 4, against a
// device-to-device cudaMemcpy of the same buffer, timed with CUDA events.
// The step waits once for its status word, so its time includes one host
// round trip.
#include <terse/core/cuda_memory.hpp>
#include <terse/cuda/powersgd.cuh>

#include <cstdio>
#include <string>

#include "codec_bench_support.hpp"
#include "cuda_bench_support.cuh"

// Outside the anonymous namespace: nvcc flags its unused members there.
namespace powersgd_device_test {

/// One rank alone, on device memory: the allreduces are no-ops.
struct device_solo_transport {
  template <terse::memory_space S>
  static constexpr bool accepts_memory = S == terse::memory_space::device;
  int rank() const { return 0; }
  int size() const { return 1; }
  template <class T, terse::memory_space S>
  void allreduce(terse::span<T, S>, terse::reduce_op)
  {
  }
};

}  // namespace powersgd_device_test

using powersgd_device_test::device_solo_transport;

namespace {

using terse::bench::device_memcpy_reference;
using terse::bench::time_on_stream;

void powersgd_reduce(benchmark::State& state, std::uint32_t rank)
{
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const std::size_t n = bytes / sizeof(float);
  terse::cuda_stream stream;
  terse::device_buffer<float> values(n);
  const auto input = terse::bench::bench_gradient(n);
  TERSE_CUDA_TRY(cudaMemcpy(values.data(), input.data(), bytes, cudaMemcpyHostToDevice));
  terse::cuda::powersgd_state codec(rank);
  device_solo_transport t;
  terse::codec_context ctx;
  time_on_stream(state, stream.get(), {}, [&] {
    codec.reduce(ctx, t, values.span(n), stream.get());
    ++ctx.step;
  });
  const auto s = codec.shape(n);
  state.counters["ratio"] = static_cast<double>(n) / static_cast<double>(s.k * (s.m + s.p) + 1);
}

}  // namespace

int main(int argc, char** argv)
{
  if (terse::cuda_device_count() == 0) {
    std::printf("bench_powersgd_cuda: no CUDA device, nothing to measure\n");
    return 0;
  }
  for (std::size_t n : terse::bench::codec_sizes) {
    const auto bytes = static_cast<std::int64_t>(4 * n);
    benchmark::RegisterBenchmark("device_memcpy_reference", device_memcpy_reference)->Arg(bytes)->UseManualTime();
    for (const std::uint32_t rank : {2u, 4u}) {
      benchmark::RegisterBenchmark(("powersgd<" + std::to_string(rank) + ">/reduce").c_str(), powersgd_reduce, rank)
          ->Arg(bytes)
          ->UseManualTime();
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

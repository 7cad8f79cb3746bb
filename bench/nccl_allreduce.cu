// Allreduce throughput of the NCCL transport on one GPU (a one-rank
// communicator: what a single lent GPU can measure) against a device-to-
// device cudaMemcpy of the same buffer, timed with CUDA events in the same
// run. Multi-GPU figures need one process per GPU; run under a launcher.
#include <terse/core/cuda_memory.hpp>
#include <terse/transport/nccl.hpp>

#include <cstdio>

#include "bench_support.hpp"

namespace {

// Times `enqueue` on `stream` with events (manual time: GPU time, not host).
template <class Enqueue>
void time_on_stream(benchmark::State& state, cudaStream_t stream, Enqueue enqueue)
{
  cudaEvent_t start;
  cudaEvent_t stop;
  TERSE_CUDA_TRY(cudaEventCreate(&start));
  TERSE_CUDA_TRY(cudaEventCreate(&stop));
  enqueue();  // warm-up
  for (auto _ : state) {
    TERSE_CUDA_TRY(cudaEventRecord(start, stream));
    enqueue();
    TERSE_CUDA_TRY(cudaEventRecord(stop, stream));
    TERSE_CUDA_TRY(cudaEventSynchronize(stop));
    float ms = 0;
    TERSE_CUDA_TRY(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(static_cast<double>(ms) / 1e3);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  TERSE_CUDA_TRY_NOTHROW(cudaEventDestroy(start));
  TERSE_CUDA_TRY_NOTHROW(cudaEventDestroy(stop));
}

void device_memcpy_reference(benchmark::State& state)
{
  const auto bytes = static_cast<std::size_t>(state.range(0));
  terse::cuda_stream stream;
  terse::device_buffer<std::byte> from(bytes), to(bytes);
  time_on_stream(state, stream.get(), [&] {
    TERSE_CUDA_TRY(cudaMemcpyAsync(to.data(), from.data(), bytes, cudaMemcpyDeviceToDevice, stream.get()));
  });
}

void nccl_allreduce(benchmark::State& state)
{
  const auto bytes = static_cast<std::size_t>(state.range(0));
  terse::cuda_stream stream;
  ncclUniqueId id;
  TERSE_NCCL_TRY(ncclGetUniqueId(&id));
  auto transport = terse::nccl_transport::create(0, 1, id, stream.get(), {.checked = false});
  terse::device_buffer<float> buffer(bytes / sizeof(float));
  const auto view = buffer.span(bytes / sizeof(float));
  time_on_stream(state, stream.get(), [&] { transport.allreduce(view, terse::reduce_op::sum); });
}

}  // namespace

BENCHMARK(device_memcpy_reference)->Apply(terse::bench::buffer_sizes)->UseManualTime();
BENCHMARK(nccl_allreduce)->Apply(terse::bench::buffer_sizes)->UseManualTime();

int main(int argc, char** argv)
{
  if (terse::cuda_device_count() == 0) {
    std::printf("bench_nccl_allreduce: no CUDA device, nothing to measure\n");
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

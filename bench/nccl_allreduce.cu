// Allreduce throughput of the NCCL transport on one GPU (a one-rank
// communicator: what a single lent GPU can measure) against a device-to-
// device cudaMemcpy of the same buffer, timed with CUDA events in the same
// run. Multi-GPU figures need one process per GPU; run under a launcher.
#include <terse/core/cuda_memory.hpp>
#include <terse/transport/nccl.hpp>

#include <cstdio>

#include "cuda_bench_support.cuh"

namespace {

using terse::bench::device_memcpy_reference;
using terse::bench::time_on_stream;

void nccl_allreduce(benchmark::State& state)
{
  const auto bytes = static_cast<std::size_t>(state.range(0));
  terse::cuda_stream stream;
  ncclUniqueId id;
  TERSE_NCCL_TRY(ncclGetUniqueId(&id));
  auto transport = terse::nccl_transport::create(0, 1, id, stream.get(), {.checked = false});
  terse::device_buffer<float> buffer(bytes / sizeof(float));
  const auto view = buffer.span(bytes / sizeof(float));
  time_on_stream(state, stream.get(), {}, [&] { transport.allreduce(view, terse::reduce_op::sum); });
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

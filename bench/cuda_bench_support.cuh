#pragma once
// Shared by the CUDA benchmarks: GPU timing with CUDA events and the
// device-to-device memcpy reference every device figure is compared
// against in the same run.

#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "bench_support.hpp"

namespace terse::bench {

/// What one timed call moves.
struct stream_bytes {
  /// Reported as bytes processed per iteration; 0 means state.range(0).
  std::int64_t processed = 0;
  /// Bytes the kernels must read and write; when set, reported as the
  /// hbm_GBps counter (compare with 2x the memcpy reference's throughput).
  double moved = 0;
};

/// Times `enqueue` on `stream` with events: manual time is GPU time between
/// the events, not host time. One untimed call first grows workspaces.
template <class Enqueue>
void time_on_stream(benchmark::State& state, cudaStream_t stream, stream_bytes bytes, Enqueue enqueue)
{
  cudaEvent_t start;
  cudaEvent_t stop;
  TERSE_CUDA_TRY(cudaEventCreate(&start));
  TERSE_CUDA_TRY(cudaEventCreate(&stop));
  enqueue();
  double seconds = 0;
  for (auto _ : state) {
    TERSE_CUDA_TRY(cudaEventRecord(start, stream));
    enqueue();
    TERSE_CUDA_TRY(cudaEventRecord(stop, stream));
    TERSE_CUDA_TRY(cudaEventSynchronize(stop));
    float ms = 0;
    TERSE_CUDA_TRY(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(static_cast<double>(ms) / 1e3);
    seconds += static_cast<double>(ms) / 1e3;
  }
  state.SetBytesProcessed(state.iterations() * (bytes.processed != 0 ? bytes.processed : state.range(0)));
  if (bytes.moved > 0 && seconds > 0) {
    state.counters["hbm_GBps"] = bytes.moved * static_cast<double>(state.iterations()) / seconds / 1e9;
  }
  TERSE_CUDA_TRY_NOTHROW(cudaEventDestroy(start));
  TERSE_CUDA_TRY_NOTHROW(cudaEventDestroy(stop));
}

/// A device-to-device cudaMemcpy of state.range(0) bytes.
inline void device_memcpy_reference(benchmark::State& state)
{
  const auto bytes = static_cast<std::size_t>(state.range(0));
  cuda_stream stream;
  device_buffer<std::byte> from(bytes), to(bytes);
  time_on_stream(state, stream.get(), {.moved = 2.0 * static_cast<double>(bytes)}, [&] {
    TERSE_CUDA_TRY(cudaMemcpyAsync(to.data(), from.data(), bytes, cudaMemcpyDeviceToDevice, stream.get()));
  });
}

}  // namespace terse::bench

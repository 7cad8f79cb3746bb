// Device throughput of the sparsifiers (topk, threshold, dgc) at 1% density
// on 2^24 and 2^26 floats, timed with CUDA events against a device-to-
// device cudaMemcpy of the same input in the same run. The codec calls wait
// for their stream (they return the payload size), so the events also count
// the host's part of the orchestration.
#include <terse/core/cuda_memory.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/cuda/dgc.cuh>
#include <terse/cuda/threshold.cuh>
#include <terse/cuda/topk.cuh>

#include <cstdio>
#include <string>
#include <vector>

#include "codec_bench_support.hpp"
#include "cuda_bench_support.cuh"

namespace {

using terse::bench::device_memcpy_reference;
using terse::bench::time_on_stream;

template <class Codec>
void register_device_codec(const std::string& name, Codec prototype)
{
  for (std::size_t n : terse::bench::codec_sizes) {
    const auto bytes = static_cast<std::int64_t>(4 * n);
    benchmark::RegisterBenchmark(
        (name + "/device_encode").c_str(),
        [prototype, n](benchmark::State& state) {
          Codec codec = prototype;
          terse::cuda_stream stream;
          terse::device_workspace workspace;
          const auto host = terse::bench::bench_gradient(n);
          terse::device_buffer<float> in(n);
          TERSE_CUDA_TRY(cudaMemcpy(in.data(), host.data(), 4 * n, cudaMemcpyHostToDevice));
          terse::device_buffer<std::byte> out(codec.max_encoded_bytes(n));
          terse::codec_context ctx;
          std::size_t used = 0;
          time_on_stream(state, stream.get(), {.processed = static_cast<std::int64_t>(4 * n)}, [&] {
            used = terse::cuda::encode(codec, ctx, in.span(n), out.span(codec.max_encoded_bytes(n)), stream.get(),
                                       workspace);
            ++ctx.step;
          });
          state.counters["ratio"] = static_cast<double>(4 * n) / static_cast<double>(used);
        })
        ->Arg(bytes)
        ->UseManualTime();
    benchmark::RegisterBenchmark(
        (name + "/device_decode").c_str(),
        [prototype, n](benchmark::State& state) {
          Codec codec = prototype;
          terse::cuda_stream stream;
          terse::device_workspace workspace;
          const auto host = terse::bench::bench_gradient(n);
          std::vector<std::byte> payload(codec.max_encoded_bytes(n));
          payload.resize(codec.encode({}, terse::host_span<const float>(host), terse::host_span<std::byte>(payload)));
          terse::device_buffer<std::byte> bytes_on_device(payload.size());
          TERSE_CUDA_TRY(cudaMemcpy(bytes_on_device.data(), payload.data(), payload.size(), cudaMemcpyHostToDevice));
          terse::device_buffer<float> acc(n);
          TERSE_CUDA_TRY(cudaMemset(acc.data(), 0, 4 * n));
          time_on_stream(state, stream.get(), {.processed = static_cast<std::int64_t>(4 * n)}, [&] {
            terse::cuda::decode_add(codec, {},
                                    terse::device_span<const std::byte>(bytes_on_device.data(), payload.size()),
                                    acc.span(n), stream.get(), workspace);
          });
        })
        ->Arg(bytes)
        ->UseManualTime();
  }
}

}  // namespace

int main(int argc, char** argv)
{
  if (terse::cuda_device_count() == 0) {
    std::printf("bench_codecs_sparse_cuda: no CUDA device, nothing to measure\n");
    return 0;
  }
  for (std::size_t n : terse::bench::codec_sizes) {
    benchmark::RegisterBenchmark("device_memcpy_reference", device_memcpy_reference)
        ->Arg(static_cast<std::int64_t>(4 * n))
        ->UseManualTime();
  }
  register_device_codec("topk(0.01)", terse::compress::topk{.density = 0.01f});
  register_device_codec("threshold(0.00495)", terse::compress::threshold{.tau = 0.00495f});
  register_device_codec("dgc(0.01)/reused", terse::compress::dgc{.density = 0.01f});
  register_device_codec("dgc(0.01)/sampled", terse::compress::dgc{.density = 0.01f, .reuse_threshold = false});
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

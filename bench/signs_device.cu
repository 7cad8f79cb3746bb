// Device throughput of sign, terngrad and randomk (encode and decode_add) on
// 2^24 and 2^26 floats, timed with CUDA events against a device-to-device
// cudaMemcpy of the same input buffer in the same run. Each codec call
// waits for its stream once (to report non-finite input or a malformed
// payload), which the figures include.
#include <terse/core/cuda_memory.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/cuda/randomk.cuh>
#include <terse/cuda/sign.cuh>
#include <terse/cuda/terngrad.cuh>

#include <cstdio>
#include <string>
#include <vector>

#include "codec_bench_support.hpp"
#include "cuda_bench_support.cuh"

namespace {

using terse::bench::device_memcpy_reference;
using terse::bench::time_on_stream;

template <class Codec>
void device_encode(benchmark::State& state, Codec codec)
{
  const std::size_t n = static_cast<std::size_t>(state.range(0)) / sizeof(float);
  terse::cuda_stream stream;
  terse::device_workspace workspace;
  const auto host = terse::bench::bench_gradient(n);
  terse::device_buffer<float> in(n);
  terse::device_buffer<std::byte> out(codec.max_encoded_bytes(n));
  TERSE_CUDA_TRY(cudaMemcpy(in.data(), host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  terse::codec_context ctx;
  time_on_stream(state, stream.get(), {}, [&] {
    terse::cuda::encode(codec, ctx, terse::device_span<const float>(in.span(n)), out.span(codec.max_encoded_bytes(n)),
                        stream.get(), workspace);
  });
}

template <class Codec>
void device_decode(benchmark::State& state, Codec codec)
{
  const std::size_t n = static_cast<std::size_t>(state.range(0)) / sizeof(float);
  terse::cuda_stream stream;
  terse::device_workspace workspace;
  const auto host = terse::bench::bench_gradient(n);
  terse::device_buffer<float> in(n), acc(n);
  const std::size_t bytes = codec.max_encoded_bytes(n);
  terse::device_buffer<std::byte> payload(bytes);
  TERSE_CUDA_TRY(cudaMemcpy(in.data(), host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  TERSE_CUDA_TRY(cudaMemset(acc.data(), 0, n * sizeof(float)));
  terse::codec_context ctx;
  terse::cuda::encode(codec, ctx, terse::device_span<const float>(in.span(n)), payload.span(bytes), stream.get(),
                      workspace);
  time_on_stream(state, stream.get(), {}, [&] {
    terse::cuda::decode_add(codec, ctx, terse::device_span<const std::byte>(payload.span(bytes)), acc.span(n),
                            stream.get(), workspace);
  });
}

template <class Codec>
void register_device_codec(const std::string& name, Codec codec)
{
  for (std::size_t n : terse::bench::codec_sizes) {
    const auto bytes = static_cast<std::int64_t>(4 * n);
    benchmark::RegisterBenchmark((name + "/device_encode").c_str(), device_encode<Codec>, codec)
        ->Arg(bytes)
        ->UseManualTime();
    benchmark::RegisterBenchmark((name + "/device_decode").c_str(), device_decode<Codec>, codec)
        ->Arg(bytes)
        ->UseManualTime();
  }
}

}  // namespace

int main(int argc, char** argv)
{
  if (terse::cuda_device_count() == 0) {
    std::printf("bench_codecs_signs_cuda: no CUDA device, nothing to measure\n");
    return 0;
  }
  for (std::size_t n : terse::bench::codec_sizes) {
    benchmark::RegisterBenchmark("device_memcpy_reference", device_memcpy_reference)
        ->Arg(static_cast<std::int64_t>(4 * n))
        ->UseManualTime();
  }
  register_device_codec("sign", terse::compress::sign{});
  register_device_codec("terngrad", terse::compress::terngrad{});
  register_device_codec("randomk<0.01>", terse::compress::randomk{.density = 0.01});
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

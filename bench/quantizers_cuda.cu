// Device throughput of the quantizers on 2^24 and 2^26 floats, timed with
// CUDA events against a device-to-device cudaMemcpy of the same input
// buffer in the same run:
//   <codec>/device_encode          the API call (it waits once for the status word)
//   <codec>/device_encode_kernels  the kernels alone (what HBM bandwidth bounds)
//   <codec>/device_decode          the API call (header check, validation, decode)
//   <codec>/device_decode_kernels  validation and decode kernels alone
// Counter hbm_GBps: bytes the kernels must move (input read, payload
// written; for decode payload read and acc read and written) per second;
// compare it with 2 x the memcpy reference's bytes_per_second (a copy reads
// and writes its buffer).
#include <terse/core/cuda_memory.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/cuda/adaptive.cuh>
#include <terse/cuda/cast.cuh>
#include <terse/cuda/qsgd.cuh>
#include <terse/cuda/uniform.cuh>

#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "codec_bench_support.hpp"
#include "cuda_bench_support.cuh"

namespace {

using terse::bench::device_memcpy_reference;
using terse::bench::time_on_stream;

/// The enqueue-only encode and validate+decode of each codec.
template <class Codec>
struct kernels;

template <unsigned Bits>
struct kernels<terse::compress::uniform<Bits>> {
  using policy = terse::detail::uniform_device_policy<Bits>;
  using codec = terse::compress::uniform<Bits>;
  static void encode(const codec& c, const float* in, std::size_t n, std::byte* out, cudaStream_t s,
                     terse::device_workspace& w)
  {
    terse::detail::quantizer_encode_enqueue<policy, false>(in, nullptr, nullptr, n, c.bucket, {}, out,
                                                           {.codec = codec::id, .param = Bits, .count = n}, s, w);
  }
  static void decode(const codec& c, const std::byte* payload, std::size_t n, float* acc, cudaStream_t s,
                     terse::device_workspace& w)
  {
    terse::detail::quantizer_validate_enqueue<policy>(payload + 24, n, c.bucket, s, w);
    terse::detail::quantizer_decode_enqueue<policy>(payload + 24, n, c.bucket, acc, s, w);
  }
};

template <std::uint32_t Levels>
struct kernels<terse::compress::qsgd<Levels>> {
  using policy = terse::detail::qsgd_device_policy<Levels>;
  using codec = terse::compress::qsgd<Levels>;
  static void encode(const codec& c, const float* in, std::size_t n, std::byte* out, cudaStream_t s,
                     terse::device_workspace& w)
  {
    terse::detail::quantizer_encode_enqueue<policy, false>(in, nullptr, nullptr, n, c.bucket, {}, out,
                                                           {.codec = codec::id, .param = Levels, .count = n}, s, w);
  }
  static void decode(const codec& c, const std::byte* payload, std::size_t n, float* acc, cudaStream_t s,
                     terse::device_workspace& w)
  {
    terse::detail::quantizer_validate_enqueue<policy>(payload + 24, n, c.bucket, s, w);
    terse::detail::quantizer_decode_enqueue<policy>(payload + 24, n, c.bucket, acc, s, w);
  }
};

template <class Storage>
struct kernels<terse::compress::cast<Storage>> {
  using codec = terse::compress::cast<Storage>;
  static void encode(const codec&, const float* in, std::size_t n, std::byte* out, cudaStream_t s,
                     terse::device_workspace& w)
  {
    terse::detail::cast_encode_enqueue<Storage, false>(terse::compress::overflow::raise, in, nullptr, nullptr, n,
                                                       out + 24, s, w);
  }
  static void decode(const codec&, const std::byte* payload, std::size_t n, float* acc, cudaStream_t s,
                     terse::device_workspace& w)
  {
    terse::detail::cast_validate_enqueue<Storage>(payload + 24, n, false, s, w);
    terse::detail::cast_decode_enqueue<Storage, true>(payload + 24, n, acc, s);
  }
};

template <class Codec>
void register_device_codec(const std::string& name, Codec codec)
{
  for (std::size_t n : terse::bench::codec_sizes) {
    const auto bytes = static_cast<std::int64_t>(4 * n);
    const double payload = static_cast<double>(codec.max_encoded_bytes(n));
    const double encode_moves = 4.0 * static_cast<double>(n) + payload;
    const double decode_moves = payload + 8.0 * static_cast<double>(n);
    for (const bool kernels_only : {false, true}) {
      const std::string suffix = kernels_only ? "_kernels" : "";
      benchmark::RegisterBenchmark(
          (name + "/device_encode" + suffix).c_str(),
          [codec, n, kernels_only, encode_moves](benchmark::State& state) {
            terse::cuda_stream stream;
            terse::device_workspace workspace;
            const auto host = terse::bench::bench_gradient(n);
            terse::device_buffer<float> in(n);
            const std::size_t capacity = codec.max_encoded_bytes(n);
            terse::device_buffer<std::byte> out(capacity);
            TERSE_CUDA_TRY(cudaMemcpy(in.data(), host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
            time_on_stream(state, stream.get(), {.moved = encode_moves}, [&] {
              if (kernels_only) {
                kernels<Codec>::encode(codec, in.data(), n, out.data(), stream.get(), workspace);
              } else {
                terse::cuda::encode(codec, {}, terse::device_span<const float>(in.span(n)), out.span(capacity),
                                    stream.get(), workspace);
              }
            });
          })
          ->Arg(bytes)
          ->UseManualTime();
      benchmark::RegisterBenchmark(
          (name + "/device_decode" + suffix).c_str(),
          [codec, n, kernels_only, decode_moves](benchmark::State& state) {
            terse::cuda_stream stream;
            terse::device_workspace workspace;
            const auto host = terse::bench::bench_gradient(n);
            terse::device_buffer<float> in(n), acc(n);
            const std::size_t capacity = codec.max_encoded_bytes(n);
            terse::device_buffer<std::byte> payload(capacity);
            TERSE_CUDA_TRY(cudaMemcpy(in.data(), host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
            TERSE_CUDA_TRY(cudaMemset(acc.data(), 0, n * sizeof(float)));
            const std::size_t used = terse::cuda::encode(codec, {}, terse::device_span<const float>(in.span(n)),
                                                         payload.span(capacity), stream.get(), workspace);
            time_on_stream(state, stream.get(), {.moved = decode_moves}, [&] {
              if (kernels_only) {
                kernels<Codec>::decode(codec, payload.data(), n, acc.data(), stream.get(), workspace);
              } else {
                terse::cuda::decode_add(codec, {}, terse::device_span<const std::byte>(payload.span(used)), acc.span(n),
                                        stream.get(), workspace);
              }
            });
          })
          ->Arg(bytes)
          ->UseManualTime();
    }
  }
}

}  // namespace

int main(int argc, char** argv)
{
  if (terse::cuda_device_count() == 0) {
    std::printf("bench_codecs_quantizers_cuda: no CUDA device, nothing to measure\n");
    return 0;
  }
  for (std::size_t n : terse::bench::codec_sizes) {
    benchmark::RegisterBenchmark("device_memcpy_reference", device_memcpy_reference)
        ->Arg(static_cast<std::int64_t>(4 * n))
        ->UseManualTime();
  }
  using namespace terse::compress;
  register_device_codec("cast<fp16>", cast_fp16{});
  register_device_codec("cast<bf16>", cast_bf16{});
  register_device_codec("uniform<8>", uniform<8>{});
  register_device_codec("uniform<4>", uniform<4>{});
  register_device_codec("uniform<2>", uniform<2>{});
  register_device_codec("qsgd<127>", qsgd<127>{});
  register_device_codec("qsgd<7>", qsgd<7>{});
  register_device_codec("qsgd<1>", qsgd<1>{});
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

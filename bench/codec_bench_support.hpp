#pragma once
// Registers a codec's host benchmarks: encode, decode and (when the codec
// fuses it) encode with residual feedback, on 2^24 and 2^26 floats, beside
// memcpy of the same input buffer. The size argument is the input in bytes,
// so scripts/bench_report.py pairs each with its memcpy reference.

#include <terse/core/concepts.hpp>
#include <terse/core/policy_types.hpp>

#include <string>
#include <vector>

#include "bench_support.hpp"

namespace terse::bench {

inline constexpr std::size_t codec_sizes[] = {std::size_t{1} << 24, std::size_t{1} << 26};  // floats

inline std::vector<float> bench_gradient(std::size_t n)
{
  std::vector<float> v(n);
  std::uint32_t x = 12345;
  for (auto& e : v) {  // cheap xorshift noise: generating inputs is not what we measure
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    e = (static_cast<float>(x >> 8) * 0x1p-24f - 0.5f) * 1e-2f;
  }
  return v;
}

inline void register_memcpy_references()
{
  for (std::size_t n : codec_sizes) {
    benchmark::RegisterBenchmark("memcpy_reference", memcpy_reference)->Arg(static_cast<std::int64_t>(4 * n));
  }
}

/// `make()` returns a fresh codec (so each benchmark owns its state).
template <class Make>
void register_codec(const std::string& name, Make make)
{
  for (std::size_t n : codec_sizes) {
    const auto bytes = static_cast<std::int64_t>(4 * n);
    benchmark::RegisterBenchmark((name + "/encode").c_str(), [make, n](benchmark::State& state) {
      auto codec = make();
      const auto in = bench_gradient(n);
      std::vector<std::byte> out(codec.max_encoded_bytes(n));
      codec_context ctx;
      std::size_t used = 0;
      for (auto _ : state) {
        used = codec.encode(ctx, host_span<const float>(in), host_span<std::byte>(out));
        benchmark::DoNotOptimize(out.data());
        ++ctx.step;
      }
      state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(4 * n));
      state.counters["ratio"] = static_cast<double>(4 * n) / static_cast<double>(used);
    })->Arg(bytes);
    benchmark::RegisterBenchmark((name + "/decode").c_str(), [make, n](benchmark::State& state) {
      auto codec = make();
      const auto in = bench_gradient(n);
      std::vector<std::byte> payload(codec.max_encoded_bytes(n));
      codec_context ctx;
      payload.resize(codec.encode(ctx, host_span<const float>(in), host_span<std::byte>(payload)));
      std::vector<float> acc(n, 0.0f);
      for (auto _ : state) {
        codec.decode_add(ctx, host_span<const std::byte>(payload), host_span<float>(acc));
        benchmark::DoNotOptimize(acc.data());
      }
      state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(4 * n));
    })->Arg(bytes);
    if constexpr (concepts::residual_fusing_compressor<decltype(make())>) {
      benchmark::RegisterBenchmark((name + "/encode_residual").c_str(), [make, n](benchmark::State& state) {
        auto codec = make();
        const auto g = bench_gradient(n);
        std::vector<float> e_old(n, 0.0f), e_new(n);
        std::vector<std::byte> out(codec.max_encoded_bytes(n));
        codec_context ctx;
        for (auto _ : state) {
          codec.encode_residual(ctx, host_span<const float>(g), host_span<const float>(e_old), host_span<float>(e_new),
                                host_span<std::byte>(out));
          benchmark::DoNotOptimize(e_new.data());
          ++ctx.step;
        }
        state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(4 * n));
      })->Arg(bytes);
    }
  }
}

}  // namespace terse::bench

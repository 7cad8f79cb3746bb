#pragma once
// Shared by the benchmarks: the buffer sizes we sweep and the memcpy
// reference every throughput is compared against in the same run.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstring>
#include <vector>

namespace terse::bench {

inline constexpr std::size_t kib = 1024;
inline constexpr std::size_t mib = 1024 * kib;

/// 1 KiB, 4 KiB, ..., 256 MiB (bytes).
inline void buffer_sizes(benchmark::internal::Benchmark* b)
{
  for (std::size_t bytes = kib; bytes <= 256 * mib; bytes *= 4) {
    b->Arg(static_cast<std::int64_t>(bytes));
  }
}

/// The reference: memcpy of the same number of bytes, one thread.
inline void memcpy_reference(benchmark::State& state)
{
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::vector<std::byte> from(bytes, std::byte{1});
  std::vector<std::byte> to(bytes, std::byte{0});
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), bytes);
    benchmark::DoNotOptimize(to.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

}  // namespace terse::bench

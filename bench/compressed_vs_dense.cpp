// The compressed allreduce against the dense one on a modelled network.
// For each codec and world size, one averaging step runs on W in-process
// ranks; a step's time is rank 0's measured compression CPU time (its
// thread CPU time outside transport verbs) plus the communication time an
// alpha-beta network at 1, 10 and 100 Gb/s (25/10/5 us latency) would take
// for exactly the verbs it made. The dense allreduce of the same gradient
// is run in the same iteration; the counters report both and the speedup.
// Rows under sparse/ compare the two aggregations of a sparse codec
// (allreduce_config::sparse: allgather, reduce_scatter) at W = 8 ... 64 on
// 2^22 floats; bytes_per_rank is rank 0's bytes sent in the step.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/dgc.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/randomk.hpp>
#include <terse/compress/sign.hpp>
#include <terse/compress/terngrad.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>
#if defined(TERSE_WITH_BLAS)
#include <terse/compress/powersgd.hpp>
#endif

#include <array>
#include <string>

#include "codec_bench_support.hpp"
#include "cpu_timed.hpp"

namespace {

constexpr std::array<double, 3> gigabits{1.0, 10.0, 100.0};
constexpr std::array<double, 3> latencies{25e-6, 10e-6, 5e-6};

struct step_cost {
  double compute_s = 0;            // rank 0's compression CPU time
  std::array<double, 3> comm_s{};  // modelled, per bandwidth
  std::uint64_t bytes_sent = 0;    // rank 0, all verbs
};

/// One averaging step with `Codec` and `Feedback` on W ranks (a warm-up
/// step first, so scratch and feedback state exist); rank 0's cost.
template <class Codec, class Feedback>
step_cost measure(int world, std::size_t n, const Codec& codec,
                  terse::sparse_aggregation sparse = terse::sparse_aggregation::allgather)
{
  step_cost cost;
  const terse::layout shape = terse::layout::single(n);
  terse::run_local(world, [&](terse::local_transport& local) {
    terse::bench::cpu_timed timed(local);
    terse::metered metered(timed);
    terse::simulated_network at100(metered, terse::network_model::gbps(gigabits[2], latencies[2]));
    terse::simulated_network at10(at100, terse::network_model::gbps(gigabits[1], latencies[1]));
    terse::simulated_network at1(at10, terse::network_model::gbps(gigabits[0], latencies[0]));
    terse::allreduce<Codec, Feedback, decltype(at1)> sync(at1, shape, {.sparse = sparse}, codec);
    auto gradient = terse::bench::bench_gradient(n);
    for (float& v : gradient) {
      v *= static_cast<float>(1 + local.rank() % 3);  // ranks differ
    }
    std::vector<float> g = gradient;
    sync.average(terse::host_span<float>(g));  // warm-up
    g = gradient;
    timed.reset();
    metered.reset();
    at1.reset();
    at10.reset();
    at100.reset();
    local.barrier();
    const double start = terse::bench::thread_cpu_seconds();
    sync.average(terse::host_span<float>(g));
    const double cpu = terse::bench::thread_cpu_seconds() - start;
    if (local.rank() == 0) {
      cost.compute_s = cpu - timed.seconds_in_verbs();
      cost.comm_s = {at1.modelled_seconds(), at10.modelled_seconds(), at100.modelled_seconds()};
      cost.bytes_sent = metered.counts().total().bytes_sent;
    }
  });
  return cost;
}

template <class Codec, class Feedback>
void compare(benchmark::State& state, const Codec& codec,
             terse::sparse_aggregation sparse = terse::sparse_aggregation::allgather)
{
  const int world = static_cast<int>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  step_cost dense, compressed;
  for (auto _ : state) {
    dense = measure<terse::compress::identity, terse::feedback::none>(world, n, terse::compress::identity{});
    compressed = measure<Codec, Feedback>(world, n, codec, sparse);
    state.SetIterationTime(compressed.compute_s + compressed.comm_s[1]);
  }
  state.counters["W"] = world;
  state.counters["compress_ms"] = compressed.compute_s * 1e3;
  state.counters["bytes_per_rank"] = static_cast<double>(compressed.bytes_sent);
  state.counters["wire_ratio"] =
      static_cast<double>(dense.bytes_sent) / static_cast<double>(std::max<std::uint64_t>(compressed.bytes_sent, 1));
  for (std::size_t b = 0; b < gigabits.size(); ++b) {
    const std::string g = std::to_string(static_cast<int>(gigabits[b])) + "g";
    const double dense_s = dense.compute_s + dense.comm_s[b];
    const double ours_s = compressed.compute_s + compressed.comm_s[b];
    state.counters["dense_ms_" + g] = dense_s * 1e3;
    state.counters["ms_" + g] = ours_s * 1e3;
    state.counters["speedup_" + g] = dense_s / ours_s;
  }
}

// W = 8 on 2^24 floats (a 64 MiB gradient); W = 64 on 2^22 (the 64 ranks
// share one machine's memory).
void worlds(benchmark::internal::Benchmark* b)
{
  b->Args({8, std::int64_t{1} << 24});
  b->Args({64, std::int64_t{1} << 22});
  b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
}

// The sparse aggregations side by side: 2^22 floats at W = 8, 16, 32, 64.
void sparse_worlds(benchmark::internal::Benchmark* b)
{
  for (const std::int64_t world : {8, 16, 32, 64}) {
    b->Args({world, std::int64_t{1} << 22});
  }
  b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
}

}  // namespace

// Each codec with the feedback it is used with: none for the unbiased
// quantisers and the casts, residual (EF) for the biased ones, momentum
// correction for DGC.
template <class Codec, class Feedback>
void add(const char* name, Codec codec)
{
  benchmark::RegisterBenchmark(name, [codec](benchmark::State& state) {
    compare<Codec, Feedback>(state, codec);
  })->Apply(worlds);
}

// `name`/allgather and `name`/reduce_scatter over sparse_worlds.
template <class Codec, class Feedback>
void add_sparse(const std::string& name, Codec codec)
{
  for (const auto sparse : {terse::sparse_aggregation::allgather, terse::sparse_aggregation::reduce_scatter}) {
    const std::string full = "sparse/" + name + "/" + std::string(terse::to_string(sparse));
    benchmark::RegisterBenchmark(full.c_str(), [codec, sparse](benchmark::State& state) {
      compare<Codec, Feedback>(state, codec, sparse);
    })->Apply(sparse_worlds);
  }
}

int main(int argc, char** argv)
{
  using terse::feedback::none;
  using terse::feedback::residual;
  namespace c = terse::compress;
  add<c::cast_bf16, none>("cast_bf16", {});
  add<c::cast_fp16, none>("cast_fp16", {});
  add<c::uniform<8>, none>("uniform8", {});
  add<c::uniform<4>, none>("uniform4", {});
  add<c::uniform<2>, none>("uniform2", {});
  add<c::qsgd<127>, none>("qsgd127", {});
  add<c::qsgd<7>, none>("qsgd7", {});
  add<c::terngrad, none>("terngrad", {});
  add<c::sign, residual>("sign_ef", {});
  add<c::topk, residual>("topk_1pct_ef", {.density = 0.01f});
  add<c::dgc, terse::feedback::dgc_momentum>("dgc_0_1pct_momentum", {.density = 0.001f});
  add<c::randomk, residual>("randomk_1pct_ef", {.density = 0.01});
  add_sparse<c::topk, residual>("topk_1pct_ef", {.density = 0.01f});
  add_sparse<c::dgc, terse::feedback::dgc_momentum>("dgc_1pct_momentum", {.density = 0.01f});
#if defined(TERSE_WITH_BLAS)
  add<c::powersgd, residual>("powersgd_r2_ef", {.rank = 2});
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

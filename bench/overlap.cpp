// One training step with its communication overlapped with the backward
// pass, against the same step done synchronously (backward, then average),
// in one run. W ranks are threads; the network is the alpha-beta model with
// the wall clock following it (an exchange completes when its modelled
// transfer would have, and a rank's link carries one transfer at a time).
// The backward pass is modelled too: per bucket, a sleep as long as that
// bucket's modelled communication, so the best overlap could reach is
// (B + 1) / 2B of the synchronous step.
//
//   bench_overlap --benchmark_counters_tabular=true
#include <terse/collective/allreduce.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/identity.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/simulated_network.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct step_times {
  double synchronous_s = 0;
  double overlapped_s = 0;
  double comm_per_bucket_s = 0;
};

template <class Codec>
step_times measure(int world, std::size_t buckets, std::size_t bucket_elements, double gigabits_per_s, double latency_s,
                   int steps)
{
  step_times times;
  const std::vector<std::size_t> sizes(buckets, bucket_elements);
  const terse::layout shape(sizes, bucket_elements);
  terse::run_local(world, [&](terse::local_transport& local) {
    terse::simulated_network net(local, terse::network_model::gbps(gigabits_per_s, latency_s),
                                 terse::wall_clock::follows_model);
    terse::allreduce sync(net, shape, Codec{}, terse::feedback::residual{});
    std::vector<float> grads(shape.total());
    for (std::size_t i = 0; i < grads.size(); ++i) {
      grads[i] = 1e-3f * static_cast<float>((i * 7 + static_cast<std::size_t>(local.rank())) % 19);
    }
    // Warm-up: scratch grows, and the modelled cost of one bucket is known.
    // Later steps average the averages (the values stay finite and change
    // little), so the loop times terse and the modelled backward only.
    net.reset();
    sync.average(terse::host_span<float>(grads));
    const auto backward = std::chrono::duration_cast<clock_type::duration>(
        std::chrono::duration<double>(net.modelled_seconds() / static_cast<double>(buckets)));

    const auto timed = [&](bool overlap) {
      local.barrier();
      const auto began = clock_type::now();
      for (int step = 1; step <= steps; ++step) {
        for (const terse::bucket& b : shape.buckets()) {
          std::this_thread::sleep_for(backward);  // the trainer's backward for this bucket
          if (overlap) {
            sync.start(b.id, terse::host_span<float>(grads).subspan(b.offset, b.count));
          }
        }
        if (overlap) {
          sync.wait_all();
        } else {
          sync.average(terse::host_span<float>(grads));
        }
      }
      return std::chrono::duration<double>(clock_type::now() - began).count() / steps;
    };
    const double synchronous = timed(false);
    const double overlapped = timed(true);
    if (local.rank() == 0) {
      times = {synchronous, overlapped, std::chrono::duration<double>(backward).count()};
    }
  });
  return times;
}

template <class Codec>
void overlap(benchmark::State& state)
{
  const auto buckets = static_cast<std::size_t>(state.range(0));
  const auto elements = static_cast<std::size_t>(state.range(1));
  const auto gigabits = static_cast<double>(state.range(2));
  const auto world = static_cast<int>(state.range(3));
  const double latency_s = 1e-6 * static_cast<double>(state.range(4));
  step_times total;
  for (auto _ : state) {
    const step_times t = measure<Codec>(world, buckets, elements, gigabits, latency_s, 3);
    total.synchronous_s += t.synchronous_s;
    total.overlapped_s += t.overlapped_s;
    total.comm_per_bucket_s += t.comm_per_bucket_s;
    state.SetIterationTime(t.overlapped_s);
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["sync_ms"] = 1e3 * total.synchronous_s / n;
  state.counters["overlap_ms"] = 1e3 * total.overlapped_s / n;
  state.counters["bucket_comm_ms"] = 1e3 * total.comm_per_bucket_s / n;
  state.counters["ratio"] = total.overlapped_s / total.synchronous_s;
  state.counters["best_ratio"] = static_cast<double>(buckets + 1) / static_cast<double>(2 * buckets);
}

// Args: buckets, elements per bucket, Gb/s, W, latency in us. W = 8 ranks
// share this machine's cores, so their codec work takes longer than on a
// cluster where each rank has its own; W = 2 gives each rank a core. The
// last row of each codec is a slow wide-area link on which the codec work
// is negligible: it shows what the overlap itself reaches.
template <class Codec>
void register_rows(const char* name)
{
  benchmark::RegisterBenchmark(name, overlap<Codec>)
      ->Args({8, 1 << 18, 10, 8, 25})
      ->Args({8, 1 << 18, 10, 2, 25})
      ->Args({8, 1 << 18, 1, 8, 25})
      ->Args({8, 1 << 14, 1, 8, 1000})
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(2);
}

}  // namespace

int main(int argc, char** argv)
{
  register_rows<terse::compress::identity>("overlap/dense");
  register_rows<terse::compress::cast_bf16>("overlap/bf16");
  register_rows<terse::compress::uniform<4>>("overlap/uniform4");
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}

// The cost model (terse/cost/model.hpp) against SimGrid's SMPI: one step of
// terse::allreduce per cell, dense and with codecs, on a flat SMPI cluster,
// its simulated time printed beside the model's prediction for the same
// cluster (cost::cluster::smpi_flat with the platform's bandwidth and link
// latency). Network only: run it with --cfg=smpi/simulate-computation:no,
// and the model leaves compute out too. Rank 0 prints one line per cell:
//
//   cost W=8 gbps=10 link_us=25 codec=uniform4 floats=65536 smpi_ms=... model_ms=... error=+0.4% bytes=ok
//     alpha_beta_ms=...
//
// (alpha_beta_ms: the same step priced on plain alpha-beta, cost::cluster::flat,
// without SMPI's size factors, cross-traffic and polling: what they add.)
// A cell's time is from the moment the last rank starts the step to the
// moment the last rank finishes it (SMPI's clock is global), the mean of
// `repeats` steps after one warm-up step. Every rank also checks that the
// bytes it sent (terse::metered) are the model's, exactly.
//
// Usage: smpi_cost_model <gbps> <link_latency_us> <codecs> <floats> [repeats] [max_error] [shared]
//   codecs: comma-separated of dense, bf16 (cast_bf16), uniform4 (uniform<4> + residual),
//           topk (topk 1 % + residual), topk_rs (the same, sparse reduce-scatter)
//   floats: comma-separated bucket sizes
//   max_error: exit 1 when some cell's |model/smpi - 1| exceeds it (or bytes differ)
//   shared: allocations of 4 MiB or more go to SMPI_SHARED_MALLOC (run with
//           --cfg=smpi/shared-malloc:global): ranks then share one block of
//           memory, so values are garbage and a step may end in an error
//           (ignored); what is sent does not depend on the values for dense,
//           bf16 and uniform4, and for topk the bytes check says whether it did.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/cost/model.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/mpi.hpp>

#include <mpi.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "smpi_timing.hpp"

namespace {

// --- opt-in shared allocations (SMPI_SHARED_MALLOC) for the largest cells ---------
// Globals are per rank under SMPI (privatization), so each rank keeps its own list.
bool share_large = false;
constexpr std::size_t share_from = std::size_t{4} << 20;
std::array<void*, 256> shared_blocks{};

bool forget_shared(void* pointer) noexcept
{
  for (void*& block : shared_blocks) {
    if (block == pointer) {
      block = nullptr;
      return true;
    }
  }
  return false;
}

}  // namespace

void* operator new(std::size_t size)
{
  if (share_large && size >= share_from) {
    for (void*& block : shared_blocks) {
      if (block == nullptr) {
        block = SMPI_SHARED_MALLOC(size);
        return block;
      }
    }
  }
  void* memory = std::malloc(size == 0 ? 1 : size);
  if (memory == nullptr) {
    throw std::bad_alloc();
  }
  return memory;
}

void operator delete(void* pointer) noexcept
{
  if (pointer != nullptr && forget_shared(pointer)) {
    SMPI_SHARED_FREE(pointer);
    return;
  }
  std::free(pointer);
}

void operator delete(void* pointer, std::size_t) noexcept
{
  operator delete(pointer);
}

namespace {

using transport = terse::metered<terse::mpi_transport&>;

struct cell {
  double smpi_s = 0.0;
  std::uint64_t bytes_per_step = 0;
  int failed_steps = 0;
};

// One warm-up step, then `repeats` timed ones: the last rank to start to
// the last rank to finish, averaged.
template <class Sync>
cell run_steps(Sync& sync, transport& t, std::size_t n, int repeats)
{
  cell result;
  std::vector<float> values(n);
  const auto refill = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      values[i] = 1e-3f * static_cast<float>((i * 7 + static_cast<std::size_t>(t.rank()) * 13) % 101) - 0.05f;
    }
  };
  const auto step = [&] {
    try {
      sync.average(terse::host_span<float>(values));
    } catch (const terse::error&) {
      if (!share_large) {
        throw;
      }
      ++result.failed_steps;  // shared garbage values: the exchange still ran in full
    }
  };
  refill();
  step();
  t.reset();
  for (int k = 0; k < repeats; ++k) {
    refill();
    MPI_Barrier(MPI_COMM_WORLD);
    const double start = MPI_Wtime();
    step();
    const std::array<double, 2> mine{start, MPI_Wtime()};
    std::array<double, 2> last{};
    MPI_Allreduce(mine.data(), last.data(), 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    result.smpi_s += last[1] - last[0];
  }
  result.smpi_s /= repeats;
  result.bytes_per_step = t.counts().total().bytes_sent / static_cast<std::uint64_t>(repeats);
  return result;
}

template <class Codec>
cell run_codec(transport& t, std::size_t n, int repeats, const Codec& codec, terse::allreduce_config config)
{
  if constexpr (std::is_same_v<Codec, terse::compress::identity>) {
    terse::allreduce sync(t, terse::layout::single(n), config);
    return run_steps(sync, t, n, repeats);
  } else if constexpr (std::is_same_v<Codec, terse::compress::cast_bf16>) {
    terse::allreduce sync(t, terse::layout::single(n), config, codec);
    return run_steps(sync, t, n, repeats);
  } else {
    terse::allreduce sync(t, terse::layout::single(n), config, codec, terse::feedback::residual{});
    return run_steps(sync, t, n, repeats);
  }
}

struct outcome {
  cell measured;
  terse::cost::step_plan plan;
  terse::cost::prediction model;
  terse::cost::prediction alpha_beta;  ///< the same plan on plain alpha-beta: no SMPI corrections
};

outcome run(const std::string& codec, transport& t, std::size_t n, int repeats, const terse::cost::cluster& c,
            const terse::cost::cluster& plain)
{
  using namespace terse;
  const int world = t.size();
  // Dense: no finite check, so the shared (garbage) mode sends the same.
  const allreduce_config dense{.check_finite = false};
  const allreduce_config by_allgather{};
  const allreduce_config by_reduce_scatter{.sparse = sparse_aggregation::reduce_scatter};
  const auto measure = [&](const auto& codec_value, const allreduce_config& config, const cost::step_options& o) {
    outcome out{run_codec(t, n, repeats, codec_value, config), cost::plan(world, n, codec_value, o), {}, {}};
    out.model = cost::price(c, out.plan);
    out.alpha_beta = cost::price(plain, out.plan);
    return out;
  };
  if (codec == "dense") {
    return measure(compress::identity{}, dense, {});
  }
  if (codec == "bf16") {
    return measure(compress::cast_bf16{}, by_allgather, {});
  }
  if (codec == "uniform4") {
    return measure(compress::uniform<4>{}, by_allgather, {.residual = true});
  }
  if (codec == "topk") {
    return measure(compress::topk{.density = 0.01f}, by_allgather, {.residual = true});
  }
  if (codec == "topk_rs") {
    return measure(compress::topk{.density = 0.01f}, by_reduce_scatter,
                   {.residual = true, .sparse = sparse_aggregation::reduce_scatter});
  }
  TERSE_FAIL(errc::invalid_argument, "unknown codec '" + codec + "' (dense, bf16, uniform4, topk, topk_rs)");
}

}  // namespace

int main(int argc, char** argv)
{
  terse::mpi_session session(&argc, &argv);
  int rank = 0;
  int world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (argc < 5) {
    if (rank == 0) {
      std::fprintf(stderr, "usage: %s <gbps> <link_latency_us> <codecs> <floats> [repeats] [max_error] [shared]\n",
                   argv[0]);
    }
    return 2;
  }
  const double gbps = std::stod(argv[1]);
  const double link_us = std::stod(argv[2]);
  const std::vector<std::string> codecs = smpi_timing::split_list(argv[3]);
  const std::vector<std::string> sizes = smpi_timing::split_list(argv[4]);
  const int repeats = argc > 5 ? std::max(1, std::stoi(argv[5])) : 1;
  const double max_error = argc > 6 ? std::stod(argv[6]) : -1.0;
  share_large = argc > 7 && std::string(argv[7]) == "shared";
  const terse::cost::cluster c = terse::cost::cluster::smpi_flat(gbps, link_us * 1e-6);
  const terse::cost::cluster plain = terse::cost::cluster::flat(gbps, 2.0 * link_us * 1e-6);

  terse::mpi_transport mpi(MPI_COMM_WORLD, terse::transport_options{.checked = false});
  transport t(mpi);
  int failures = 0;
  for (const std::string& floats : sizes) {
    const std::size_t n = std::stoul(floats);
    for (const std::string& codec : codecs) {
      const outcome o = run(codec, t, n, repeats, c, plain);
      // Every rank's bytes against the plan's for that rank.
      int wrong_bytes = o.measured.bytes_per_step == o.plan.bytes_sent(rank) ? 0 : 1;
      MPI_Allreduce(MPI_IN_PLACE, &wrong_bytes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
      int failed_steps = o.measured.failed_steps;
      MPI_Allreduce(MPI_IN_PLACE, &failed_steps, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
      const double model_s = o.model.seconds();
      const double error = model_s / o.measured.smpi_s - 1.0;
      const bool bad = wrong_bytes != 0 || (max_error >= 0.0 && std::fabs(error) > max_error);
      failures += bad ? 1 : 0;
      if (rank == 0) {
        std::printf(
            "cost W=%d gbps=%g link_us=%g codec=%s floats=%zu smpi_ms=%.4f model_ms=%.4f error=%+.2f%% "
            "bytes=%s alpha_beta_ms=%.4f%s%s\n",
            world, gbps, link_us, codec.c_str(), n, o.measured.smpi_s * 1e3, model_s * 1e3, 100.0 * error,
            wrong_bytes == 0 ? "ok" : "WRONG", o.alpha_beta.seconds() * 1e3, share_large ? " shared" : "",
            failed_steps > 0 ? " (steps raised: shared garbage values)" : "");
        std::fflush(stdout);
      }
    }
  }
  if (rank == 0 && max_error >= 0.0) {
    std::printf("cost W=%d gbps=%g: %d cell(s) outside |error| <= %g or with wrong bytes\n", world, gbps, failures,
                max_error);
  }
  return failures == 0 ? 0 : 1;
}

// Once warm, a step of the allreduce allocates nothing: units, scratch,
// codec and schedule snapshots, and the local transport's messages and
// exchange slots (kept per tag) are all reused, however the rank threads
// interleave. Counted with a replaced global operator new, per rank thread.
// The same steps over MPI processes are counted in
// tests/mpi/allocation_test.cpp.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/dgc.hpp>
#include <terse/compress/threshold.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/slowmo.hpp>

#if defined(TERSE_WITH_BLAS)
#include <terse/compress/powersgd.hpp>
#endif

#include <doctest/doctest.h>

#include <vector>

#include "counting_new.hpp"
#include "test_codecs.hpp"

using counting_new::allocations;
using counting_new::counting;

namespace {
const terse::layout& shape()
{
  static const std::vector<std::size_t> sizes{3000, 10, 1537, 7, 4096, 900, 5};
  static const terse::layout layout(sizes, 4600, /*dense_below=*/64);
  return layout;
}

std::vector<float> gradient(int rank, int step)
{
  std::vector<float> g(shape().total());
  for (std::size_t i = 0; i < g.size(); ++i) {
    g[i] = 0.013f * static_cast<float>((i * 31 + static_cast<std::size_t>(rank * 7 + step * 3)) % 23) - 0.1f;
  }
  return g;
}

// Allocations per rank in steps 3..5 of `sync`, started bucket by bucket.
template <class Sync>
long steady_allocations(Sync& sync, terse::local_transport& t, bool parameters)
{
  std::vector<float> g = gradient(t.rank(), 0);
  long counted = 0;
  for (int step = 0; step < 6; ++step) {
    const std::vector<float> fresh = gradient(t.rank(), step);
    std::copy(fresh.begin(), fresh.end(), g.begin());
    counting = step >= 3;
    allocations = 0;
    if (parameters) {
      sync.on_parameters(terse::host_span<float>(g));
    } else {
      for (const terse::bucket& b : shape().buckets()) {
        sync.start(b.id, terse::host_span<float>(g).subspan(b.offset, b.count));
      }
      sync.wait_all();
    }
    counting = false;
    counted += allocations;
  }
  return counted;
}
}  // namespace

TEST_CASE("a warm allreduce step allocates nothing, on every path and with a driving schedule")
{
  REQUIRE(counting_new::counter_works());

  constexpr int world = 3;
  constexpr std::size_t paths = 9;
  std::vector<long> counted(world * paths, -1);
  terse::run_local(world, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    terse::allreduce dense(t, shape());
    counted[r * paths + 0] = steady_allocations(dense, t, false);
    terse::allreduce summable(t, shape(), test_codecs::truncating{.drop = 8}, terse::feedback::residual{});
    counted[r * paths + 1] = steady_allocations(summable, t, false);
    terse::allreduce requantized(t, shape(), terse::compress::uniform<4>{}, terse::feedback::residual{});
    counted[r * paths + 2] = steady_allocations(requantized, t, false);
    terse::allreduce gathered(t, shape(), test_codecs::nonzeros{}, terse::feedback::residual{});
    counted[r * paths + 3] = steady_allocations(gathered, t, false);
    terse::allreduce dgc(t, shape(), terse::compress::dgc{.density = 0.05f}, terse::feedback::dgc_momentum{});
    counted[r * paths + 4] = steady_allocations(dgc, t, false);
    terse::allreduce outer(t, shape(), terse::schedule::slowmo(terse::schedule::periodic(1)));
    counted[r * paths + 5] = steady_allocations(outer, t, true);
    // The sparse reduce-scatter: fixed sizes (top-k), announced sizes
    // (threshold, DGC). Sizes that vary from step to step still grow a buffer
    // (the engine's or the local transport's) whenever they reach a new high,
    // on the allgather path too; DGC at tolerance 0 sends exactly k values,
    // so its announced sizes repeat.
    const terse::allreduce_options sparse{.sparse = terse::sparse_aggregation::reduce_scatter};
    terse::allreduce topk(t, shape(), terse::compress::topk{.density = 0.05f}, terse::feedback::residual{}, sparse);
    counted[r * paths + 6] = steady_allocations(topk, t, false);
    terse::allreduce threshold(t, shape(), terse::compress::threshold{.tau = 0.08f}, terse::feedback::residual{},
                               sparse);
    counted[r * paths + 7] = steady_allocations(threshold, t, false);
    terse::allreduce dgc_rs(t, shape(), terse::compress::dgc{.density = 0.05f, .tolerance = 0.0f},
                            terse::feedback::dgc_momentum{}, sparse);
    counted[r * paths + 8] = steady_allocations(dgc_rs, t, false);
  });
  for (std::size_t i = 0; i < counted.size(); ++i) {
    CAPTURE(i);
    CHECK(counted[i] == 0);
  }
}

#if defined(TERSE_WITH_BLAS)
TEST_CASE("a warm PowerSGD step allocates nothing: its factor averages reuse the unit's buffers")
{
  REQUIRE(counting_new::counter_works());
  std::vector<long> counted(3, -1);
  terse::run_local(3, [&](terse::local_transport& t) {
    terse::allreduce sync(t, shape(), terse::compress::powersgd{.rank = 2}, terse::feedback::residual{});
    counted[static_cast<std::size_t>(t.rank())] = steady_allocations(sync, t, false);
  });
  for (std::size_t r = 0; r < counted.size(); ++r) {
    CAPTURE(r);
    CHECK(counted[r] == 0);
  }
}
#endif

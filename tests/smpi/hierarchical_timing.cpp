// One step of the flat allreduce against the hierarchical one (groups of
// `ranks_per_node` consecutive ranks, as platforms/multigpu.hosts packs
// them; each simulated GPU is a host of its own, so MPI_Comm_split_type
// would see one rank per host), dense and with uniform<4> + residual feedback,
// on the same buffer in the same run. Under smpirun on platforms/multigpu
// (4 nodes of 4 GPUs, fast links inside a node, 10 Gb/s between) MPI_Wtime
// reads simulated time, so the numbers are what the platform predicts;
// contention on each node's uplink is modelled. The dense results are
// checked against the exact mean (small integers), so a run is also a
// correctness check of split and the hierarchy under SMPI. Rank 0
// prints one line:
//
//   hierarchical W=16 groups=4 floats=... flat_ms=... hierarchical_ms=... flat_uniform4_ms=...
//   hierarchical_uniform4_ms=...
//
// Usage: smpi_hierarchical_timing [floats] [repeats] [ranks_per_node]   (defaults: 2^20, 2, 4)
#include <terse/collective/allreduce.hpp>
#include <terse/collective/hierarchical.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/mpi.hpp>

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "smpi_timing.hpp"

namespace {

bool exact_mean(const std::vector<float>& mean, int world)
{
  for (std::size_t i = 0; i < mean.size(); ++i) {
    float sum = 0.0f;
    for (int r = 0; r < world; ++r) {
      sum += smpi_timing::input(r, i);
    }
    if (mean[i] != sum / static_cast<float>(world)) {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv)
{
  terse::mpi_session session(&argc, &argv);
  const std::size_t floats = argc > 1 ? std::stoul(argv[1]) : std::size_t{1} << 20;
  const int repeats = argc > 2 ? std::max(1, std::stoi(argv[2])) : 2;
  const int ranks_per_node = argc > 3 ? std::max(1, std::stoi(argv[3])) : 4;
  int failures = 0;
  terse::mpi_transport world(MPI_COMM_WORLD, terse::transport_options{.checked = false});
  const int rank = world.rank();
  const terse::layout shape = terse::layout::single(floats);
  std::vector<float> buffer(floats);

  terse::allreduce flat(world, shape);
  const double flat_ms =
      smpi_timing::time_ms(buffer, rank, repeats, [&] { flat.average(terse::host_span<float>(buffer)); });
  failures += exact_mean(buffer, world.size()) ? 0 : 1;

  terse::hierarchical_allreduce hierarchical(world, terse::groups::of_size(ranks_per_node), shape);
  const double hierarchical_ms =
      smpi_timing::time_ms(buffer, rank, repeats, [&] { hierarchical.average(terse::host_span<float>(buffer)); });
  failures += exact_mean(buffer, world.size()) ? 0 : 2;

  terse::allreduce flat_uniform4(world, shape, terse::compress::uniform<4>{}, terse::feedback::residual{});
  const double flat_uniform4_ms =
      smpi_timing::time_ms(buffer, rank, repeats, [&] { flat_uniform4.average(terse::host_span<float>(buffer)); });

  terse::hierarchical_allreduce hierarchical_uniform4(world, terse::groups::of_size(ranks_per_node), shape,
                                                      terse::compress::uniform<4>{}, terse::feedback::residual{});
  const double hierarchical_uniform4_ms = smpi_timing::time_ms(
      buffer, rank, repeats, [&] { hierarchical_uniform4.average(terse::host_span<float>(buffer)); });

  int worst = 0;
  MPI_Allreduce(&failures, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0) {
    std::printf(
        "hierarchical W=%d groups=%d floats=%zu repeats=%d flat_ms=%.3f hierarchical_ms=%.3f flat_uniform4_ms=%.3f "
        "hierarchical_uniform4_ms=%.3f%s\n",
        world.size(), hierarchical.group_count(), floats, repeats, flat_ms, hierarchical_ms, flat_uniform4_ms,
        hierarchical_uniform4_ms, worst == 0 ? "" : " WRONG MEAN");
  }
  return worst == 0 ? 0 : 1;
}

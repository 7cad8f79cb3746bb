// Time of one dense allreduce of n floats: terse's mpi_transport against the
// MPI library's own MPI_Allreduce, on the same buffer in the same run. Under
// smpirun MPI_Wtime reads simulated time, so the numbers are what the
// platform file predicts (docs/simulation.md); under mpirun they are wall
// time. Both results are checked against the exact sum, so a run on a new
// platform file is also a correctness check. Rank 0 prints one line:
//
//   allreduce W=8 floats=1048576 repeats=3 terse_ms=... mpi_ms=...
//
// Usage: smpi_allreduce_timing [floats] [repeats]   (defaults: 2^20, 3)
#include <terse/transport/mpi.hpp>

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "smpi_timing.hpp"

namespace {

bool exact(const std::vector<float>& sum, int world)
{
  // input(r, i) depends on i only through i mod 13: 13 sums cover every
  // element (O(n + 13 W) instead of O(n W), which matters at W = 256).
  std::vector<float> want(13, 0.0f);
  for (std::size_t k = 0; k < want.size(); ++k) {
    for (int r = 0; r < world; ++r) {
      want[k] += smpi_timing::input(r, k);
    }
  }
  for (std::size_t i = 0; i < sum.size(); ++i) {
    if (sum[i] != want[i % 13]) {
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
  const int repeats = argc > 2 ? std::max(1, std::stoi(argv[2])) : 3;
  int rank = 0;
  int world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);

  std::vector<float> buffer(floats);
  int failures = 0;
  double terse_ms = 0.0;
  {
    terse::mpi_transport transport(MPI_COMM_WORLD, terse::transport_options{.checked = false});
    terse_ms = smpi_timing::time_ms(
        buffer, rank, repeats, [&] { transport.allreduce(terse::host_span<float>(buffer), terse::reduce_op::sum); });
    failures += exact(buffer, world) ? 0 : 1;
  }
  const double mpi_ms = smpi_timing::time_ms(buffer, rank, repeats, [&] {
    MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(buffer.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  });
  failures += exact(buffer, world) ? 0 : 2;

  int worst = 0;
  MPI_Allreduce(&failures, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0) {
    std::printf("allreduce W=%d floats=%zu repeats=%d terse_ms=%.3f mpi_ms=%.3f%s\n", world, floats, repeats, terse_ms,
                mpi_ms, worst == 0 ? "" : " WRONG SUM");
  }
  return worst == 0 ? 0 : 1;
}

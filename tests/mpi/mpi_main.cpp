// doctest main for MPI tests: every rank runs every test case; rank 0 prints
// the full report, the others only failures (lines are tagged by mpirun).
// All ranks exit with the worst result so mpirun's status is the verdict.
#define DOCTEST_CONFIG_IMPLEMENT
#include <terse/transport/mpi.hpp>

#if defined(TERSE_MPI_TESTS_NEED_A_DEVICE)
#include <terse/core/cuda_memory.hpp>
#endif

#include <doctest/doctest.h>
#include <mpi.h>

#include <cstdio>

int main(int argc, char** argv)
{
  terse::mpi_session session(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
#if defined(TERSE_MPI_TESTS_NEED_A_DEVICE)
  // Built to prove the device path compiles; run only where every rank has
  // a GPU. 77 is ctest's SKIP_RETURN_CODE, so no GPU reads as skipped.
  int has_device = terse::cuda_device_count() > 0 ? 1 : 0;
  int every_rank_has_one = 0;
  MPI_Allreduce(&has_device, &every_rank_has_one, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (every_rank_has_one == 0) {
    if (rank == 0) {
      std::puts("skipped: not every rank sees a CUDA device (the device staging path was compiled, not run)");
    }
    return 77;
  }
#endif
  doctest::Context context;
  context.setOption("no-colors", true);  // output goes through mpirun's pipes
  context.applyCommandLine(argc, argv);
  if (rank != 0) {
    context.setOption("minimal", true);
  }
  const int result = context.run();
  int worst = result;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

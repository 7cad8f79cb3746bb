// doctest main for the dead-peer test, where the last rank of the world dies.
//
// Two things differ from mpi_main.cpp, both forced by Open MPI 4.1:
// - mpirun --enable-recovery exits 0 even when a survivor exits non-zero, so
//   the survivors combine their results on a communicator of their own (split
//   off before the death) and rank 0 prints one verdict line that ctest
//   matches (PASS_REGULAR_EXPRESSION).
// - MPI_Finalize fences with every process of the job, and under load the
//   survivors could wait in it for the dead one forever (seen about one run
//   in ten), so they flush and leave without it.
#define DOCTEST_CONFIG_IMPLEMENT
#include <terse/transport/mpi.hpp>

#include <doctest/doctest.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv)
{
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm survivors = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, rank < size - 1 ? 0 : MPI_UNDEFINED, rank, &survivors);

  doctest::Context context;
  context.setOption("no-colors", true);  // output goes through mpirun's pipes
  context.applyCommandLine(argc, argv);
  if (rank != 0) {
    context.setOption("minimal", true);
  }
  const int result = context.run();

  if (survivors != MPI_COMM_NULL) {
    int worst = result;
    MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, survivors);
    if (rank == 0) {
      if (worst == 0) {
        std::printf("dead-peer test: all %d survivors passed\n", size - 1);
      } else {
        std::printf("dead-peer test: a survivor FAILED\n");
      }
    }
  }
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(result);
}

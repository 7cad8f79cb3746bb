// A user's codecs and feedback rule (tests/extension/acme_codecs.hpp)
// through the allreduce over real MPI processes: the bits they give over
// threads.
#include <cstring>
#include <utility>
#include <vector>

#include "../extension/extension_runs.hpp"
#include "mpi_test_support.hpp"

TEST_CASE("user codecs and a user feedback rule over MPI give the bits they give over threads")
{
  terse::mpi_transport mpi(MPI_COMM_WORLD, mpi_test::patient());
  const std::vector<float> over_mpi = extension_test::every_run(mpi);
  std::vector<float> over_threads;
  const int me = mpi.rank();
  terse::run_local(mpi.size(), [&](terse::local_transport& local) {
    auto result = extension_test::every_run(local);
    if (local.rank() == me) {
      over_threads = std::move(result);
    }
  });
  REQUIRE(over_mpi.size() == over_threads.size());
  CHECK(std::memcmp(over_mpi.data(), over_threads.data(), over_mpi.size() * sizeof(float)) == 0);
}

// A rank that dies without a word. Run under `mpirun --enable-recovery`
// (Open MPI): without it, mpirun kills the whole job as soon as one process
// exits without MPI_Finalize, so no survivor could observe anything.
#include <cstdlib>

#include "mpi_test_support.hpp"

using terse::host_span;
using terse::reduce_op;

TEST_CASE("survivors of a dead peer raise timeout within the deadline, and the transport is unhealthy")
{
  using namespace std::chrono_literals;
  constexpr auto timeout = 500ms;
  const int world = mpi_test::world_size();
  if (world < 2) {
    MESSAGE("needs two ranks");
    return;
  }
  auto transport = std::make_unique<terse::mpi_transport>(
      MPI_COMM_WORLD, terse::transport_options{.timeout = timeout, .checked = true});
  transport->barrier();  // everyone is alive here
  if (transport->rank() == world - 1) {
    std::_Exit(0);  // dies: no MPI_Finalize, no destructor, no goodbye
  }
  std::this_thread::sleep_for(100ms);  // let it die before the next call
  std::vector<float> buffer(1000, 1.0f);
  const auto start = mpi_test::clock::now();
  const std::string result = mpi_test::outcome([&] { transport->allreduce(host_span<float>(buffer), reduce_op::sum); });
  const double elapsed = mpi_test::milliseconds_since(start);
  MESSAGE("rank " << transport->rank() << ": " << result << " after " << elapsed << " ms");
  // Open MPI 4.1 has no failure notification (no ULFM): the dead peer is a
  // silent one. An MPI with ULFM would report peer_failed.
  const bool expected =
      result == mpi_test::name(terse::errc::timeout) || result == mpi_test::name(terse::errc::peer_failed);
  CHECK(expected);
  CHECK(elapsed < 500.0 + 500.0);
  CHECK_FALSE(transport->healthy());
  CHECK(mpi_test::outcome([&] { transport->barrier(); }) == mpi_test::name(terse::errc::peer_failed));
  // The fingerprint allreduce can never finish: the destructor waits at most
  // the timeout for it, then leaves the request and its communicator to MPI.
  const auto teardown = mpi_test::clock::now();
  transport.reset();
  const double teardown_ms = mpi_test::milliseconds_since(teardown);
  MESSAGE("rank " << mpi_test::world_rank() << ": destructor took " << teardown_ms << " ms");
  CHECK(teardown_ms < 500.0 + 500.0);
}

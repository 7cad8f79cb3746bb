// failure_scope::peer over MPI processes: the last rank dies (std::_Exit);
// the survivors' receive from it raises a terse::peer_error naming it
// within the deadline, and they go on point-to-point among themselves on
// the same transport. Run under `mpirun --enable-recovery` (Open MPI), with
// dead_peer_main.cpp. Open MPI 4.1 reports no process failure, so the dead
// rank is found by its silence, and a small send to it completes unnoticed
// (tests/mpi/recovery_evidence).
#include <cstdlib>

#include "mpi_test_support.hpp"

using terse::host_span;

TEST_CASE("peer scope: survivors name the dead rank and go on point-to-point among themselves")
{
  using namespace std::chrono_literals;
  constexpr auto timeout = 500ms;
  const int world = mpi_test::world_size();
  if (world < 3) {
    MESSAGE("needs three ranks");
    return;
  }
  auto transport = std::make_unique<terse::mpi_transport>(
      MPI_COMM_WORLD,
      terse::transport_options{.timeout = timeout, .checked = true, .failures = terse::failure_scope::peer});
  transport->barrier();  // everyone is alive here
  const int dead = world - 1;
  if (transport->rank() == dead) {
    std::_Exit(0);  // dies: no MPI_Finalize, no destructor, no goodbye
  }
  std::this_thread::sleep_for(100ms);
  const int me = transport->rank();

  float x = -1.0f;
  int named = -2;
  terse::errc code = terse::errc::internal;
  const auto start = mpi_test::clock::now();
  try {
    transport->recv(host_span<float>(&x, 1), dead, 5);
  } catch (const terse::peer_error& e) {
    named = e.peer();
    code = e.code();
  }
  const double elapsed = mpi_test::milliseconds_since(start);
  MESSAGE("rank " << me << ": recv from the dead rank raised after " << elapsed << " ms");
  CHECK(named == dead);
  CHECK(code == terse::errc::timeout);
  CHECK(elapsed < 500.0 + 500.0);
  CHECK(x == -1.0f);  // the cancelled receive left the buffer alone
  CHECK(transport->healthy());

  // The survivors pass values around a ring of their own, on the same transport.
  const int survivors = world - 1;
  const int next = (me + 1) % survivors;
  const int previous = (me + survivors - 1) % survivors;
  for (int round = 0; round < 10; ++round) {
    const float mine = static_cast<float>(100 * me + round);
    float theirs = -1.0f;
    transport->sendrecv(host_span<const float>(&mine, 1), next, host_span<float>(&theirs, 1), previous, 6);
    CHECK(theirs == static_cast<float>(100 * previous + round));
  }
  CHECK(transport->healthy());

  // The destructor waits at most the timeout for what the dead rank left.
  const auto teardown = mpi_test::clock::now();
  transport.reset();
  CHECK(mpi_test::milliseconds_since(teardown) < 500.0 + 500.0);
}

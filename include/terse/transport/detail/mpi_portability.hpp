#pragma once
/// @file
/// What the MPI transport does differently on MPI libraries that lack a
/// call it prefers. Today that is SimGrid's SMPI (the simulated MPI of
/// `smpicxx` and `smpirun`, docs/simulation.md):
///
/// - SMPI 3.32 aborts in MPI_Comm_idup ("not yet implemented"), so the
///   transport duplicates its communicators with the blocking MPI_Comm_dup.
///   A rank that never joins then cannot be timed out: the others block
///   (SMPI ends the simulation with a deadlock report once every rank is
///   blocked).
/// - SMPI provides MPI_THREAD_SINGLE only, which is all a transport needs
///   (one thread calls MPI, and every wait polls with MPI_Test).
/// - SMPI's MPI_Testall frees requests that complete during a call that
///   returns "not all done", losing their statuses; the transport therefore
///   tests each request on its own (mpi_requests.hpp, mpi_exchange_slot.hpp)
///   on every MPI.
/// - Deadlines run on simulated time (mpi_clock.hpp).

#include <terse/core/error.hpp>
#include <terse/core/mpi_error.hpp>
#include <terse/transport/detail/mpi_clock.hpp>
#include <terse/transport/detail/mpi_requests.hpp>

#include <mpi.h>

#include <string>

namespace terse::detail::mpi {

/// Duplicates `comm` twice into `handles` (two elements), collectively. With
/// MPI_Comm_idup the duplication is polled against `deadline` and a rank
/// that does not join is errc::timeout; `handles` must then stay valid
/// (MPI writes them when the duplication completes), so the caller leaks
/// them. Without it (SMPI), MPI_Comm_dup blocks.
inline void duplicate_twice(MPI_Comm comm, MPI_Comm* handles, clock::time_point deadline, const std::string& late)
{
  if constexpr (is_smpi) {
    TERSE_MPI_TRY(MPI_Comm_dup(comm, &handles[0]));
    TERSE_MPI_TRY(MPI_Comm_dup(comm, &handles[1]));
  } else {
    MPI_Request pending[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    TERSE_MPI_TRY(MPI_Comm_idup(comm, &handles[0], &pending[0]));
    TERSE_MPI_TRY(MPI_Comm_idup(comm, &handles[1], &pending[1]));
    poll_backoff backoff;
    while (true) {
      // Each request on its own: MPI_Test frees it and leaves MPI_REQUEST_NULL.
      int done = 0;
      for (MPI_Request& request : pending) {
        int flag = 1;
        if (request != MPI_REQUEST_NULL) {
          TERSE_MPI_TRY(MPI_Test(&request, &flag, MPI_STATUS_IGNORE));
        }
        done += flag;
      }
      if (done == 2) {
        return;
      }
      if (clock::now() >= deadline) {
        TERSE_FAIL(errc::timeout, late);
      }
      backoff.pause();
    }
  }
}

}  // namespace terse::detail::mpi

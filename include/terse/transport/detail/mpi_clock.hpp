#pragma once
/// @file
/// The clock the MPI transport's deadlines (transport_options::timeout) run
/// on: std::chrono::steady_clock, except under SimGrid's SMPI, where every
/// rank is a simulated process and the clock is the simulation's (MPI_Wtime).
/// There, wall time says how fast the simulator runs, not how long a peer
/// took: a wall-clock deadline would fire whenever the host is slow, and
/// never while a peer sleeps in simulated time. SMPI is recognised by its
/// mpi.h, which defines SMPI_H (no SMPI version macro exists).

#include <mpi.h>

#include <chrono>
#include <cstdint>

#if defined(SMPI_H)
#define TERSE_MPI_IS_SMPI 1
#else
#define TERSE_MPI_IS_SMPI 0
#endif

namespace terse::detail::mpi {

/// True when compiled against SimGrid's SMPI.
inline constexpr bool is_smpi = TERSE_MPI_IS_SMPI != 0;

/// Simulated time, from MPI_Wtime, as a std::chrono clock.
struct simulated_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<simulated_clock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept { return time_point(duration(static_cast<rep>(MPI_Wtime() * 1e9))); }
};

#if TERSE_MPI_IS_SMPI
using clock = simulated_clock;
#else
using clock = std::chrono::steady_clock;
#endif

}  // namespace terse::detail::mpi

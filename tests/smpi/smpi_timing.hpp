#pragma once
// What the SMPI timing programs share: the small-integer inputs (every
// summation order gives the same exact float), the slowest rank's
// simulated time per call, and their comma-separated arguments.

#include <mpi.h>

#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

namespace smpi_timing {

/// "a,b,c" -> {"a", "b", "c"}.
inline std::vector<std::string> split_list(const std::string& list)
{
  std::vector<std::string> items;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    items.push_back(item);
  }
  return items;
}

inline float input(int rank, std::size_t i)
{
  return static_cast<float>((static_cast<std::size_t>(rank) * 7 + i) % 13);
}

/// Fills `buffer` with this rank's input().
inline void fill(std::vector<float>& buffer, int rank)
{
  for (std::size_t i = 0; i < buffer.size(); ++i) {
    buffer[i] = input(rank, i);
  }
}

/// Simulated milliseconds of one call of `step`, from the moment the last
/// rank starts it to the moment the last rank finishes it (SMPI's clock is
/// global); the buffer is refilled with input() first.
template <class Step>
double step_ms(std::vector<float>& buffer, int rank, Step&& step)
{
  fill(buffer, rank);
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  step();
  double times[2] = {start, MPI_Wtime()};
  MPI_Allreduce(MPI_IN_PLACE, times, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return 1e3 * (times[1] - times[0]);
}

/// The slowest rank's time per call, in milliseconds, of `repeats` calls of
/// `step` after one warm-up call; the buffer is refilled with input() before each.
template <class Step>
double time_ms(std::vector<float>& buffer, int rank, int repeats, Step&& step)
{
  fill(buffer, rank);
  step();
  double total = 0.0;
  for (int k = 0; k < repeats; ++k) {
    fill(buffer, rank);
    MPI_Barrier(MPI_COMM_WORLD);
    const double start = MPI_Wtime();
    step();
    total += MPI_Wtime() - start;
  }
  double slowest = 0.0;
  MPI_Allreduce(&total, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return 1e3 * slowest / repeats;
}

}  // namespace smpi_timing

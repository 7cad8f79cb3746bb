#pragma once
/// @file
/// `TERSE_MPI_TRY(call)` throws terse::error(errc::mpi) naming the call and
/// MPI's error string; `TERSE_MPI_TRY_NOTHROW` reports instead. The MPI
/// transport sets MPI_ERRORS_RETURN on its communicator so errors reach here
/// instead of aborting the job. Needs MPI (the terse::mpi target).

#include <terse/core/error.hpp>

#include <mpi.h>

#include <string>

namespace terse::detail {
inline std::string mpi_message(const char* call, int status)
{
  char reason[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(status, reason, &length) != MPI_SUCCESS) {
    length = 0;
  }
  std::string text = call;
  text += " returned ";
  text += std::to_string(status);
  text += " (";
  text.append(reason, static_cast<std::size_t>(length));
  text += ')';
  return text;
}
}  // namespace terse::detail

#define TERSE_MPI_TRY(call)                                                                                   \
  do {                                                                                                        \
    const int terse_mpi_status = (call);                                                                      \
    if (terse_mpi_status != MPI_SUCCESS) [[unlikely]] {                                                       \
      ::terse::detail::throw_error(::terse::errc::mpi, ::terse::detail::mpi_message(#call, terse_mpi_status), \
                                   TERSE_HERE);                                                               \
    }                                                                                                         \
  } while (false)

#define TERSE_MPI_TRY_NOTHROW(call)                                                                            \
  do {                                                                                                         \
    const int terse_mpi_status = (call);                                                                       \
    if (terse_mpi_status != MPI_SUCCESS) {                                                                     \
      ::terse::detail::report_error(::terse::errc::mpi, ::terse::detail::mpi_message(#call, terse_mpi_status), \
                                    TERSE_HERE);                                                               \
    }                                                                                                          \
  } while (false)

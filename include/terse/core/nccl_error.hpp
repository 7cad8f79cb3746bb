#pragma once
/// @file
/// `TERSE_NCCL_TRY(call)` throws terse::error(errc::nccl) naming the call and
/// NCCL's reason; `TERSE_NCCL_TRY_NOTHROW` reports instead, for destructors.
/// Needs NCCL (the terse::nccl target).

#include <terse/core/error.hpp>

#include <nccl.h>

#include <string>

namespace terse::detail {
inline std::string nccl_message(const char* call, ncclResult_t status)
{
  std::string text = call;
  text += " returned ";
  text += ncclGetErrorString(status);
  if (const char* last = ncclGetLastError(nullptr); last != nullptr && *last != '\0') {
    text += ": ";
    text += last;
  }
  return text;
}
}  // namespace terse::detail

#define TERSE_NCCL_TRY(call)                                                                                     \
  do {                                                                                                           \
    const ncclResult_t terse_nccl_status = (call);                                                               \
    if (terse_nccl_status != ncclSuccess && terse_nccl_status != ncclInProgress) [[unlikely]] {                  \
      ::terse::detail::throw_error(::terse::errc::nccl, ::terse::detail::nccl_message(#call, terse_nccl_status), \
                                   TERSE_HERE);                                                                  \
    }                                                                                                            \
  } while (false)

#define TERSE_NCCL_TRY_NOTHROW(call)                                                                         \
  do {                                                                                                       \
    const ncclResult_t terse_nccl_status = (call);                                                           \
    if (terse_nccl_status != ncclSuccess && terse_nccl_status != ncclInProgress) {                           \
      ::terse::detail::report_error(::terse::errc::nccl, ncclGetErrorString(terse_nccl_status), TERSE_HERE); \
    }                                                                                                        \
  } while (false)

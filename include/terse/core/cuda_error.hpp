#pragma once
/// @file
/// `TERSE_CUDA_TRY(call)` throws terse::error(errc::cuda) naming the call and
/// the CUDA error; `TERSE_CUDA_TRY_NOTHROW` reports instead, for destructors.
/// Needs the CUDA runtime headers (the terse::cuda target).

#include <terse/core/error.hpp>

#include <cuda_runtime_api.h>

#include <string>

namespace terse::detail {
inline std::string cuda_message(const char* call, cudaError_t status)
{
  std::string text = call;
  text += " returned ";
  text += cudaGetErrorName(status);
  text += " (";
  text += cudaGetErrorString(status);
  text += ')';
  return text;
}
}  // namespace terse::detail

#define TERSE_CUDA_TRY(call)                                                                                     \
  do {                                                                                                           \
    const cudaError_t terse_cuda_status = (call);                                                                \
    if (terse_cuda_status != cudaSuccess) [[unlikely]] {                                                         \
      (void)cudaGetLastError(); /* clear a sticky non-fatal error so the next call is clean */                   \
      ::terse::detail::throw_error(::terse::errc::cuda, ::terse::detail::cuda_message(#call, terse_cuda_status), \
                                   TERSE_HERE);                                                                  \
    }                                                                                                            \
  } while (false)

#define TERSE_CUDA_TRY_NOTHROW(call)                                                                         \
  do {                                                                                                       \
    const cudaError_t terse_cuda_status = (call);                                                            \
    if (terse_cuda_status != cudaSuccess) {                                                                  \
      (void)cudaGetLastError();                                                                              \
      ::terse::detail::report_error(::terse::errc::cuda, cudaGetErrorString(terse_cuda_status), TERSE_HERE); \
    }                                                                                                        \
  } while (false)

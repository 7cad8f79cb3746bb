#pragma once
// Helpers for the NCCL tests: a one-rank transport, sample values that are
// exact in every element type, and the error code a call throws.

#include <terse/core/nccl_error.hpp>
#include <terse/transport/nccl.hpp>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <cstddef>
#include <type_traits>
#include <vector>

namespace terse_test {

/// A world of one rank on the current device: enough to run every verb.
inline terse::nccl_transport single_rank(cudaStream_t stream, bool checked,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(30))
{
  ncclUniqueId id;
  TERSE_NCCL_TRY(ncclGetUniqueId(&id));
  return terse::nccl_transport::create(0, 1, id, stream, {.timeout = timeout, .checked = checked});
}

/// Small integers and halves: exact in float, fp16 and bf16 alike.
template <class T>
std::vector<T> sample(std::size_t n, int salt = 0)
{
  std::vector<T> values(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(static_cast<int>((i * 7 + static_cast<std::size_t>(salt) * 3) % 61) - 30) * 0.5f;
    if constexpr (std::is_same_v<T, std::byte>) {
      values[i] = static_cast<std::byte>(i * 13 + static_cast<std::size_t>(salt));
    } else if constexpr (std::is_arithmetic_v<T>) {
      values[i] = static_cast<T>(v < 0 && std::is_unsigned_v<T> ? -v : v);
    } else {
      values[i] = T(v);
    }
  }
  return values;
}

/// The terse::errc a call throws (errc::internal if it throws nothing).
template <class Call>
terse::errc error_of(Call&& call)
{
  try {
    call();
  } catch (const terse::error& e) {
    return e.code();
  }
  return terse::errc::internal;
}

}  // namespace terse_test

#pragma once
/// @file
/// cuBLAS in terse's error vocabulary: `TERSE_CUBLAS_TRY` throws
/// terse::error(errc::cuda) naming the call and the status, and
/// `cublas_handle` owns a handle (created on first use, so constructing a
/// codec state needs no device). Link CUDA::cublas.

#include <terse/core/error.hpp>

#include <cublas_v2.h>

#include <string>
#include <utility>

namespace terse::detail {
inline std::string cublas_message(const char* call, cublasStatus_t status)
{
  return std::string(call) + " returned " + cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")";
}
}  // namespace terse::detail

#define TERSE_CUBLAS_TRY(call)                                                                                       \
  do {                                                                                                               \
    const cublasStatus_t terse_cublas_status = (call);                                                               \
    if (terse_cublas_status != CUBLAS_STATUS_SUCCESS) [[unlikely]] {                                                 \
      ::terse::detail::throw_error(::terse::errc::cuda, ::terse::detail::cublas_message(#call, terse_cublas_status), \
                                   TERSE_HERE);                                                                      \
    }                                                                                                                \
  } while (false)

namespace terse::detail {

/// An owned cuBLAS handle in full FP32 (pedantic math: no TF32 even when
/// NVIDIA_TF32_OVERRIDE asks for it), made on the calling thread's current
/// device the first time it is needed.
class cublas_handle {
 public:
  cublas_handle() = default;
  cublas_handle(const cublas_handle&) = delete;
  cublas_handle& operator=(const cublas_handle&) = delete;
  cublas_handle(cublas_handle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  cublas_handle& operator=(cublas_handle&& other) noexcept
  {
    if (this != &other) {
      release();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~cublas_handle() { release(); }

  /// The handle, bound to `stream` for the calls that follow.
  cublasHandle_t on(cudaStream_t stream)
  {
    if (handle_ == nullptr) {
      TERSE_CUBLAS_TRY(cublasCreate(&handle_));
      TERSE_CUBLAS_TRY(cublasSetMathMode(handle_, CUBLAS_PEDANTIC_MATH));
    }
    TERSE_CUBLAS_TRY(cublasSetStream(handle_, stream));
    return handle_;
  }

 private:
  void release() noexcept
  {
    if (handle_ != nullptr) {
      const cublasStatus_t status = cublasDestroy(handle_);
      if (status != CUBLAS_STATUS_SUCCESS) {
        report_error(errc::cuda, cublasGetStatusString(status), TERSE_HERE);
      }
      handle_ = nullptr;
    }
  }

  cublasHandle_t handle_ = nullptr;
};

}  // namespace terse::detail

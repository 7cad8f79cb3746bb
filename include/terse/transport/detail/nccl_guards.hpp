#pragma once
/// @file
/// Scopes the NCCL transport opens and must close even when a call throws:
/// an NCCL group and the current CUDA device.

#include <terse/core/cuda_error.hpp>
#include <terse/core/nccl_error.hpp>

#include <cuda_runtime_api.h>
#include <nccl.h>

namespace terse::detail::nccl {

/// ncclGroupStart() on construction; end() closes the group and reports its
/// result. A group left open by an exception is closed by the destructor,
/// so the next NCCL call on this thread does not land inside it.
class group_guard {
 public:
  group_guard() { TERSE_NCCL_TRY(ncclGroupStart()); }
  group_guard(const group_guard&) = delete;
  group_guard& operator=(const group_guard&) = delete;
  ~group_guard()
  {
    if (open_) {
      TERSE_NCCL_TRY_NOTHROW(ncclGroupEnd());
    }
  }

  /// Closes the group; in non-blocking mode it may still be enqueuing after
  /// this returns (ncclInProgress), which the caller then waits out.
  void end()
  {
    open_ = false;
    TERSE_NCCL_TRY(ncclGroupEnd());
  }

 private:
  bool open_ = true;
};

/// Makes `device` current for the scope and restores the previous one.
class device_guard {
 public:
  explicit device_guard(int device)
  {
    TERSE_CUDA_TRY(cudaGetDevice(&previous_));
    if (previous_ != device) {
      TERSE_CUDA_TRY(cudaSetDevice(device));
    }
  }
  device_guard(const device_guard&) = delete;
  device_guard& operator=(const device_guard&) = delete;
  ~device_guard() { TERSE_CUDA_TRY_NOTHROW(cudaSetDevice(previous_)); }

 private:
  int previous_ = 0;
};

}  // namespace terse::detail::nccl

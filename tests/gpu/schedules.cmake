# Every schedule on device buffers (terse/cuda/schedules.cuh) against the host path.
if(TARGET terse::nccl)
  list(APPEND gpu_test_sources schedules_device_test.cu)
endif()

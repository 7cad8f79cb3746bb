# The compressed allreduce on device buffers (terse/cuda/allreduce.cuh).
if(TARGET terse::nccl)
  list(APPEND gpu_test_sources collective_device_test.cu)
endif()

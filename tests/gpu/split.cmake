# Sub-transports of nccl_transport (split, split_shared): one GPU, and across
# GPUs where there are two or more.
if(TARGET terse::nccl)
  list(APPEND gpu_test_sources nccl_split_test.cpp)
endif()

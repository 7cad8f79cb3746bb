# A user's codec (tests/extension/acme_codecs.hpp) on device buffers.
if(TARGET terse::nccl)
  list(APPEND gpu_test_sources extension_device_test.cu)
endif()

# Device cast, uniform, qsgd and adaptive against their host codecs (family `quantizers`).
list(APPEND gpu_test_sources ${CMAKE_CURRENT_LIST_DIR}/quantizers_device_test.cu)

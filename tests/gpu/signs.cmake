# Device sign, terngrad and randomk against their host codecs (family `signs`).
list(APPEND gpu_test_sources ${CMAKE_CURRENT_LIST_DIR}/signs_device_test.cu)

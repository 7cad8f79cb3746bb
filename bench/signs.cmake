# Host benchmarks of sign, terngrad and randomk (family `signs`); with CUDA,
# their device kernels against a device-to-device memcpy.
add_executable(bench_codecs_signs ${CMAKE_CURRENT_LIST_DIR}/signs.cpp)
target_link_libraries(bench_codecs_signs PRIVATE terse_bench_support)
if(TARGET terse::cuda)
  add_executable(bench_codecs_signs_cuda ${CMAKE_CURRENT_LIST_DIR}/signs_device.cu)
  target_link_libraries(bench_codecs_signs_cuda PRIVATE terse_bench_support terse::cuda)
  set_target_properties(bench_codecs_signs_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
endif()

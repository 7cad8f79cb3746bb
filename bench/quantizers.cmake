# Host benchmarks of cast, uniform, qsgd and adaptive (family `quantizers`);
# with CUDA, their device kernels against a device-to-device memcpy.
add_executable(bench_codecs_quantizers ${CMAKE_CURRENT_LIST_DIR}/quantizers.cpp)
target_link_libraries(bench_codecs_quantizers PRIVATE terse_bench_support)
if(TARGET terse::cuda)
  add_executable(bench_codecs_quantizers_cuda ${CMAKE_CURRENT_LIST_DIR}/quantizers_cuda.cu)
  target_link_libraries(bench_codecs_quantizers_cuda PRIVATE terse_bench_support terse::cuda)
  set_target_properties(bench_codecs_quantizers_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
endif()

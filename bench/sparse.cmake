# Sparsifier benchmarks: host (bench_codecs_sparse) and, with CUDA, device
# (bench_codecs_sparse_cuda) against a device-to-device memcpy.
add_executable(bench_codecs_sparse ${CMAKE_CURRENT_LIST_DIR}/sparse.cpp)
target_link_libraries(bench_codecs_sparse PRIVATE terse_bench_support)

if(TARGET terse::cuda)
  add_executable(bench_codecs_sparse_cuda ${CMAKE_CURRENT_LIST_DIR}/sparse_cuda.cu)
  target_link_libraries(bench_codecs_sparse_cuda PRIVATE terse_bench_support terse::cuda)
  set_target_properties(bench_codecs_sparse_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
endif()

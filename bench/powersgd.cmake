# compress::powersgd host benchmarks (encode, decode, reduce over a one-rank
# local world) and, with CUDA, the cuBLAS path. The host path needs terse::blas.
if(TARGET terse::blas)
  add_executable(bench_codecs_powersgd ${CMAKE_CURRENT_LIST_DIR}/powersgd.cpp)
  target_link_libraries(bench_codecs_powersgd PRIVATE terse_bench_support terse::blas)
endif()

if(TARGET terse::cuda)
  add_executable(bench_powersgd_cuda ${CMAKE_CURRENT_LIST_DIR}/powersgd_cuda.cu)
  target_link_libraries(bench_powersgd_cuda PRIVATE terse_bench_support terse::cuda CUDA::cublas)
  set_target_properties(bench_powersgd_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
endif()

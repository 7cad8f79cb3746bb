# compress::powersgd host benchmarks (encode, decode, reduce over a one-rank
# local world) and, with CUDA, the cuBLAS path. The host path needs terse::blas.
if(TARGET terse::blas)
  add_executable(bench_codecs_powersgd ${CMAKE_CURRENT_LIST_DIR}/powersgd.cpp)
  target_link_libraries(bench_codecs_powersgd PRIVATE terse_bench_support terse::blas)
endif()

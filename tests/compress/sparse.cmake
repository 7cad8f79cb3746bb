# Sparsifiers: topk, threshold, dgc (gather-only).
set(terse_sparse_test_sources
  ${CMAKE_CURRENT_LIST_DIR}/topk_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/threshold_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dgc_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sparse_kernels_test.cpp)
terse_add_test(sparse_tests SOURCES ${terse_sparse_test_sources})

# The same tests built with -mavx2, so the AVX2 filter and compaction paths
# run the whole battery (and the kernel test compares them with the scalar
# loops). Only where this machine can run AVX2 code.
include(CheckCXXSourceRuns)
set(CMAKE_REQUIRED_FLAGS -mavx2)
check_cxx_source_runs([=[
  #include <immintrin.h>
  int main() {
    if (!__builtin_cpu_supports("avx2")) return 1;
    volatile int x = 3;
    __m256i v = _mm256_set1_epi32(x);
    return _mm256_extract_epi32(_mm256_add_epi32(v, v), 2) == 6 ? 0 : 1;
  }]=] TERSE_HOST_RUNS_AVX2)
unset(CMAKE_REQUIRED_FLAGS)
if(TERSE_HOST_RUNS_AVX2)
  terse_add_test(sparse_avx2_tests SOURCES ${terse_sparse_test_sources})
  target_compile_options(sparse_avx2_tests PRIVATE -mavx2)
  target_compile_definitions(sparse_avx2_tests PRIVATE TERSE_SPARSE_EXPECT_AVX2)
endif()

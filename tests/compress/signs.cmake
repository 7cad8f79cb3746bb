# Sign, TernGrad and random-k (family `signs`). The same sources build twice:
# at the baseline ISA (the portable loops) and, where this machine runs AVX2
# and FMA, with -mavx2 -mfma, where the tests also prove the vectorised
# loops write the same bytes as the portable ones (and FMA contraction,
# which -mfma allows, changes nothing).
set(terse_signs_test_sources
  ${CMAKE_CURRENT_LIST_DIR}/sign_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/terngrad_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/randomk_test.cpp)
terse_add_test(signs_tests SOURCES ${terse_signs_test_sources})

include(CheckCXXSourceRuns)
set(CMAKE_REQUIRED_FLAGS "-mavx2 -mfma")
check_cxx_source_runs([[
  int main() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 0 : 1; }
]] TERSE_SIGNS_HOST_RUNS_AVX2)
unset(CMAKE_REQUIRED_FLAGS)
if(TERSE_SIGNS_HOST_RUNS_AVX2)
  terse_add_test(signs_avx2_tests SOURCES ${terse_signs_test_sources})
  target_compile_options(signs_avx2_tests PRIVATE -mavx2 -mfma)
endif()

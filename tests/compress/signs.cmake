# Sign, TernGrad and random-k (family `signs`). The same sources build at the
# baseline ISA (the portable loops) and, where this machine runs them, with
# AVX2 + FMA and with AVX-512 on top (terngrad's Philox then runs on 512-bit
# registers): there the codecs take their vectorised paths, the reference-
# byte tests prove those paths write the documented bytes, and the
# "vectorised path" tests compare each with its portable twin (FMA
# contraction, which -mfma allows, must change nothing).
set(terse_signs_test_sources
  ${CMAKE_CURRENT_LIST_DIR}/sign_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/terngrad_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/randomk_test.cpp)
terse_add_test(signs_tests SOURCES ${terse_signs_test_sources})

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  include(CheckCXXSourceRuns)
  set(CMAKE_REQUIRED_FLAGS "-mavx2 -mfma")
  check_cxx_source_runs([[
    int main() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 0 : 1; }
  ]] TERSE_SIGNS_HOST_RUNS_AVX2)
  set(CMAKE_REQUIRED_FLAGS "-mavx2 -mfma -mavx512f -mavx512vl")
  check_cxx_source_runs([[
    int main() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? 0 : 1; }
  ]] TERSE_SIGNS_HOST_RUNS_AVX512)
  unset(CMAKE_REQUIRED_FLAGS)
  if(TERSE_SIGNS_HOST_RUNS_AVX2)
    terse_add_test(signs_avx2_tests SOURCES ${terse_signs_test_sources})
    target_compile_options(signs_avx2_tests PRIVATE -mavx2 -mfma)
  endif()
  if(TERSE_SIGNS_HOST_RUNS_AVX2 AND TERSE_SIGNS_HOST_RUNS_AVX512)
    terse_add_test(signs_avx512_tests SOURCES ${terse_signs_test_sources})
    target_compile_options(signs_avx512_tests PRIVATE -mavx2 -mfma -mavx512f -mavx512vl)
  endif()
endif()

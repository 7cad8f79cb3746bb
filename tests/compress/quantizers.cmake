# Quantizers (family `quantizers`): cast<fp16/bf16>, uniform<8/4/2>,
# qsgd<s> and adaptive. The same sources build at the baseline ISA (the
# portable loops) and, where this machine runs them, with AVX2 + FMA + F16C
# and with AVX-512 on top: there the codecs take their SIMD paths, every
# reference-byte test proves those paths write the same bytes, and
# quantizer_simd_test.cpp compares each SIMD loop with its portable twin.
set(terse_quantizers_test_sources
  ${CMAKE_CURRENT_LIST_DIR}/cast_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/uniform_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/qsgd_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/adaptive_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/quantizer_simd_test.cpp)
terse_add_test(quantizers_tests SOURCES ${terse_quantizers_test_sources})

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  include(CheckCXXSourceRuns)
  set(CMAKE_REQUIRED_FLAGS "-mavx2 -mfma -mf16c")
  check_cxx_source_runs([[
    #include <cpuid.h>
    int main()
    {
      unsigned a = 0, b = 0, c = 0, d = 0;
      const bool f16c = __get_cpuid(1, &a, &b, &c, &d) != 0 && ((c >> 29) & 1u) != 0;  // clang 14 lacks "f16c"
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c ? 0 : 1;
    }
  ]] TERSE_QUANTIZERS_HOST_RUNS_AVX2)
  set(CMAKE_REQUIRED_FLAGS "-mavx2 -mfma -mf16c -mavx512f -mavx512vl")
  check_cxx_source_runs([[
    int main() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? 0 : 1; }
  ]] TERSE_QUANTIZERS_HOST_RUNS_AVX512)
  unset(CMAKE_REQUIRED_FLAGS)
  if(TERSE_QUANTIZERS_HOST_RUNS_AVX2)
    terse_add_test(quantizers_avx2_tests SOURCES ${terse_quantizers_test_sources})
    target_compile_options(quantizers_avx2_tests PRIVATE -mavx2 -mfma -mf16c)
  endif()
  # The sanitizer build leaves out the AVX-512 twin: its loops differ from
  # AVX2's only in width, and the default build runs it (CI time).
  option(TERSE_TEST_AVX512 "Build the AVX-512 quantizer tests where the machine runs them" ON)
  if(TERSE_QUANTIZERS_HOST_RUNS_AVX2 AND TERSE_QUANTIZERS_HOST_RUNS_AVX512 AND TERSE_TEST_AVX512)
    terse_add_test(quantizers_avx512_tests SOURCES ${terse_quantizers_test_sources})
    target_compile_options(quantizers_avx512_tests PRIVATE -mavx2 -mfma -mf16c -mavx512f -mavx512vl)
  endif()
endif()

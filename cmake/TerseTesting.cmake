# Helpers for terse's tests. Every test executable uses doctest; each test
# case becomes its own ctest entry with a label (unit, mpi, gpu, package,
# fuzz, compile_fail) so a group can run alone: `ctest -L unit`.
find_package(doctest REQUIRED)
include(doctest)

option(TERSE_WERROR "Treat warnings as errors in terse's own targets" ON)

add_library(terse_warnings INTERFACE)
target_compile_options(terse_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor>
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${TERSE_WERROR}>>:-Werror>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>
  $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${TERSE_WERROR}>>:-Werror=all-warnings>)

# Shared doctest main, built once.
add_library(terse_test_main STATIC "${PROJECT_SOURCE_DIR}/tests/support/main.cpp")
target_link_libraries(terse_test_main PUBLIC doctest::doctest terse::terse)
target_include_directories(terse_test_main PUBLIC "${PROJECT_SOURCE_DIR}/tests/support")

# terse_add_test(<name> SOURCES <files...> [LABEL <label>] [LIBS <targets...>]
#                [TIMEOUT <seconds>])
# Builds an executable and registers each of its test cases with ctest.
function(terse_add_test name)
  cmake_parse_arguments(arg "" "LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT arg_LABEL)
    set(arg_LABEL unit)
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE terse::terse terse_test_main terse_warnings ${arg_LIBS})
  doctest_discover_tests(${name}
    TEST_PREFIX "${name}."
    PROPERTIES LABELS "${arg_LABEL}" TIMEOUT ${arg_TIMEOUT})
endfunction()

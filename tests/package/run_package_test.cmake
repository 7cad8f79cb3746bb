# One step of terse's package test, run as `cmake -D... -P run_package_test.cmake`.
#   STEP=install            cmake --install the current build into WORK_DIR/prefix and check its layout
#   STEP=install_host_only  configure the source tree with no CUDA and no MPI, install into WORK_DIR/core-only/prefix
#   STEP=consume            configure (and build, and run) tests/package/consumer against PREFIX
# consume takes COMPONENTS / OPTIONAL_COMPONENTS (comma-separated), VERSION,
# EXPECT (run | build | configure_fails), EXPECT_MESSAGE (for
# configure_fails) and EXPECT_MISSING (optional components that must not be
# found).
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS TERSE_SOURCE_DIR TERSE_BINARY_DIR WORK_DIR GENERATOR STEP NAME)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_package_test.cmake needs -D${var}=...")
  endif()
endforeach()

# run(<what> COMMAND...): runs a command, fails the test with its output
# unless it succeeds; the output is left in `run_output`.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${what} failed (${result}):\n${ARGN}\n${out}\n${err}")
  endif()
  set(run_output "${out}${err}" PARENT_SCOPE)
endfunction()

function(expect_file path)
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "the install lacks ${path}")
  endif()
endfunction()

set(config_args "")
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()

if(STEP STREQUAL "install")
  set(prefix "${WORK_DIR}/prefix")
  file(REMOVE_RECURSE "${prefix}")
  run("cmake --install" "${CMAKE_COMMAND}" --install "${TERSE_BINARY_DIR}" --prefix "${prefix}" ${config_args})
  set(cmakedir "${prefix}/share/cmake/terse")
  foreach(file IN ITEMS include/terse/core/span.hpp include/terse/core/config.hpp
                        share/cmake/terse/terseConfig.cmake share/cmake/terse/terseConfigVersion.cmake
                        share/cmake/terse/terse-targets.cmake share/cmake/terse/FindNCCL.cmake)
    expect_file("${prefix}/${file}")
  endforeach()
  string(REPLACE "," ";" built "${BUILT_COMPONENTS}")
  foreach(component IN LISTS built)
    expect_file("${cmakedir}/terse-${component}-targets.cmake")
  endforeach()
  # Header-only, so one install must serve 32- and 64-bit consumers alike:
  # evaluate the version file as find_package would for a 32-bit project.
  set(CMAKE_SIZEOF_VOID_P 4)
  set(PACKAGE_FIND_VERSION 0.1)
  set(PACKAGE_FIND_VERSION_MAJOR 0)
  set(PACKAGE_FIND_VERSION_MINOR 1)
  include("${cmakedir}/terseConfigVersion.cmake")
  if(NOT PACKAGE_VERSION_COMPATIBLE OR PACKAGE_VERSION_UNSUITABLE)
    message(FATAL_ERROR "terseConfigVersion.cmake (${PACKAGE_VERSION}) turns away a 32-bit consumer asking for 0.1; "
                        "it should be ARCH_INDEPENDENT")
  endif()
  file(GLOB_RECURSE stray RELATIVE "${prefix}" "${prefix}/*.cpp" "${prefix}/*.cu" "${prefix}/*.a" "${prefix}/*.so")
  if(stray)
    message(FATAL_ERROR "the install holds files a header-only package should not: ${stray}")
  endif()
  message(STATUS "installed terse into ${prefix} (components: ${BUILT_COMPONENTS})")

elseif(STEP STREQUAL "install_host_only")
  set(root "${WORK_DIR}/core-only")
  file(REMOVE_RECURSE "${root}")
  run("configuring a host-only terse" "${CMAKE_COMMAND}" -S "${TERSE_SOURCE_DIR}" -B "${root}/build" -G "${GENERATOR}"
      -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DTERSE_ENABLE_CUDA=OFF -DTERSE_ENABLE_MPI=OFF
      -DTERSE_BUILD_TESTS=OFF -DTERSE_BUILD_BENCH=OFF -DTERSE_BUILD_EXAMPLES=OFF)
  run("installing the host-only terse" "${CMAKE_COMMAND}" --install "${root}/build" --prefix "${root}/prefix")
  foreach(component IN ITEMS cuda nccl mpi)
    if(EXISTS "${root}/prefix/share/cmake/terse/terse-${component}-targets.cmake")
      message(FATAL_ERROR "a host-only install exported terse::${component}")
    endif()
  endforeach()

elseif(STEP STREQUAL "consume")
  if(NOT DEFINED PREFIX OR NOT DEFINED EXPECT)
    message(FATAL_ERROR "STEP=consume needs -DPREFIX=... and -DEXPECT=...")
  endif()
  set(build "${WORK_DIR}/${NAME}/build")
  file(REMOVE_RECURSE "${WORK_DIR}/${NAME}")
  set(configure_args
    -S "${TERSE_SOURCE_DIR}/tests/package/consumer" -B "${build}" -G "${GENERATOR}"
    -DCMAKE_PREFIX_PATH=${PREFIX}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    "-DCONSUMER_COMPONENTS=${COMPONENTS}"
    "-DCONSUMER_OPTIONAL_COMPONENTS=${OPTIONAL_COMPONENTS}"
    "-DCONSUMER_VERSION=${VERSION}"
    "-DCONSUMER_EXPECT_MISSING=${EXPECT_MISSING}")
  if(CONFIG)
    list(APPEND configure_args -DCMAKE_BUILD_TYPE=${CONFIG})
  endif()
  if(CUDA_COMPILER)
    list(APPEND configure_args -DCMAKE_CUDA_COMPILER=${CUDA_COMPILER} -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES})
  endif()

  if(EXPECT STREQUAL "configure_fails")
    execute_process(COMMAND "${CMAKE_COMMAND}" ${configure_args}
                    RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(result EQUAL 0)
      message(FATAL_ERROR "configuring the consumer should have failed, but it succeeded:\n${out}\n${err}")
    endif()
    # CMake wraps long messages; compare with the whitespace folded.
    string(REGEX REPLACE "[ \t\r\n]+" " " folded "${out}${err}")
    string(FIND "${folded}" "${EXPECT_MESSAGE}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "configuring failed, but without saying \"${EXPECT_MESSAGE}\":\n${out}\n${err}")
    endif()
    message(STATUS "configuring failed as it should: \"${EXPECT_MESSAGE}\"")
    return()
  endif()

  run("configuring the consumer" "${CMAKE_COMMAND}" ${configure_args})
  run("building the consumer" "${CMAKE_COMMAND}" --build "${build}" ${config_args})
  if(EXPECT STREQUAL "run")
    run("running the consumer" "${build}/app")
    if(NOT run_output MATCHES "terse consumer ok")
      message(FATAL_ERROR "the consumer ran but did not say it was ok:\n${run_output}")
    endif()
    message(STATUS "${run_output}")
  endif()

else()
  message(FATAL_ERROR "unknown STEP '${STEP}'")
endif()

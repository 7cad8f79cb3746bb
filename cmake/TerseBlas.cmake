# terse::blas: host BLAS (OpenBLAS preferred) for compress::powersgd's matrix
# products. Optional like the other components: the core configures and
# builds without it. TERSE_ENABLE_BLAS is ON, OFF or AUTO (build it when a
# BLAS with the CBLAS interface is found). Included by TerseTargets.cmake
# after terse::terse exists; sets terse_has_blas.
set(TERSE_ENABLE_BLAS "AUTO" CACHE STRING "Build the BLAS component for compress::powersgd (ON, OFF, AUTO)")
set_property(CACHE TERSE_ENABLE_BLAS PROPERTY STRINGS ON OFF AUTO)

set(terse_has_blas OFF)
if(NOT TERSE_ENABLE_BLAS STREQUAL "OFF")
  # OpenBLAS first (fast, and it ships cblas_sgemm); any BLAS otherwise.
  if(NOT DEFINED BLA_VENDOR)
    set(BLA_VENDOR OpenBLAS)
    find_package(BLAS QUIET)
    unset(BLA_VENDOR)
  endif()
  if(NOT BLAS_FOUND)
    find_package(BLAS QUIET)
  endif()
  # FindBLAS finds the library, not the header: look for cblas.h beside it
  # (Debian keeps OpenBLAS's under x86_64-linux-gnu/openblas-*/).
  find_path(TERSE_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
  if(BLAS_FOUND AND TERSE_CBLAS_INCLUDE_DIR)
    include(CheckCXXSourceCompiles)
    set(CMAKE_REQUIRED_INCLUDES "${TERSE_CBLAS_INCLUDE_DIR}")
    set(CMAKE_REQUIRED_LIBRARIES BLAS::BLAS)
    set(CMAKE_REQUIRED_QUIET ON)
    check_cxx_source_compiles([=[
      #include <cblas.h>
      int main() {
        float a = 1, b = 2, c = 0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
        return c == 2 ? 0 : 1;
      }]=] TERSE_BLAS_HAS_CBLAS)
    unset(CMAKE_REQUIRED_INCLUDES)
    unset(CMAKE_REQUIRED_LIBRARIES)
    unset(CMAKE_REQUIRED_QUIET)
    if(TERSE_BLAS_HAS_CBLAS)
      set(terse_has_blas ON)
    endif()
  endif()
  if(NOT terse_has_blas AND TERSE_ENABLE_BLAS STREQUAL "ON")
    message(FATAL_ERROR "TERSE_ENABLE_BLAS=ON but no BLAS with cblas.h and cblas_sgemm was found "
                        "(Debian: apt-get install libopenblas-dev)")
  endif()
endif()
message(STATUS "terse: blas=${terse_has_blas}")

if(terse_has_blas)
  add_library(terse_blas INTERFACE)
  add_library(terse::blas ALIAS terse_blas)
  set_target_properties(terse_blas PROPERTIES EXPORT_NAME blas)
  target_link_libraries(terse_blas INTERFACE terse BLAS::BLAS)
  target_include_directories(terse_blas SYSTEM INTERFACE "${TERSE_CBLAS_INCLUDE_DIR}")
  target_compile_definitions(terse_blas INTERFACE TERSE_WITH_BLAS=1)
  list(APPEND terse_exported_targets terse_blas)
endif()

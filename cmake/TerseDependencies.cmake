# Finds the optional toolchains and sets terse_has_cuda, terse_has_nccl and
# terse_has_mpi. AUTO builds what is found; ON makes a missing one an error.
find_package(Threads REQUIRED)

set(terse_has_cuda OFF)
set(terse_has_nccl OFF)
if(NOT TERSE_ENABLE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "")
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Hopper is the GPU we run on; a build for another card passes its own.
      set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(terse_has_cuda ON)
    find_package(NCCL)
    set(terse_has_nccl ${NCCL_FOUND})
  elseif(TERSE_ENABLE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TERSE_ENABLE_CUDA=ON but no CUDA compiler was found; set CMAKE_CUDA_COMPILER")
  endif()
endif()

set(terse_has_mpi OFF)
set(terse_mpi_is_smpi OFF)
if(NOT TERSE_ENABLE_MPI STREQUAL "OFF")
  # SimGrid's smpicxx builds MPI in: its own mpi.h is on the include path and
  # libsimgrid is linked by the wrapper, so terse::mpi needs nothing more, and
  # FindMPI would at best pick an unrelated mpiexec (docs/simulation.md).
  get_filename_component(terse_cxx_compiler_name "${CMAKE_CXX_COMPILER}" NAME)
  get_filename_component(terse_cxx_compiler_dir "${CMAKE_CXX_COMPILER}" DIRECTORY)
  if(terse_cxx_compiler_name MATCHES "^smpic(xx|\\+\\+)$")
    include(CheckCXXSourceCompiles)
    check_cxx_source_compiles("#include <mpi.h>
#if !defined(SMPI_H)
#error not SMPI
#endif
int main() { return 0; }" TERSE_COMPILER_IS_SMPI)
    if(NOT TERSE_COMPILER_IS_SMPI)
      message(FATAL_ERROR "${CMAKE_CXX_COMPILER} does not compile against SimGrid's SMPI mpi.h; "
                          "install libsimgrid-dev or pick another compiler")
    endif()
    find_program(TERSE_SMPIRUN smpirun HINTS "${terse_cxx_compiler_dir}"
                 DOC "SimGrid's launcher for programs built with smpicxx")
    set(terse_has_mpi ON)
    set(terse_mpi_is_smpi ON)
  elseif(TERSE_ENABLE_MPI STREQUAL "ON")
    find_package(MPI REQUIRED COMPONENTS CXX)
    set(terse_has_mpi ${MPI_CXX_FOUND})
  else()
    find_package(MPI COMPONENTS CXX)
    set(terse_has_mpi ${MPI_CXX_FOUND})
  endif()
endif()

message(STATUS "terse: cuda=${terse_has_cuda} nccl=${terse_has_nccl} mpi=${terse_has_mpi} smpi=${terse_mpi_is_smpi}")

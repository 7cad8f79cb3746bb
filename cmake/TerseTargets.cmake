# terse::terse is the host core; terse::cuda, terse::nccl and terse::mpi add a
# backend each. All are INTERFACE targets: terse is header-only.
add_library(terse INTERFACE)
add_library(terse::terse ALIAS terse)
target_compile_features(terse INTERFACE cxx_std_20)
# terse's headers compile in .cu files too, but nvcc defaults to C++17 and
# CMake before 3.26 has no cuda_std_20 for nvcc: ask for C++20 by flag unless
# the consuming target chose its own CUDA_STANDARD.
target_compile_options(terse INTERFACE
  "$<$<AND:$<COMPILE_LANG_AND_ID:CUDA,NVIDIA>,$<NOT:$<BOOL:$<TARGET_PROPERTY:CUDA_STANDARD>>>>:-std=c++20>")
target_link_libraries(terse INTERFACE Threads::Threads)
# In this build tree every target gets the same default; an installed terse
# leaves it to the consumer's build (false unless they define it).
target_compile_definitions(terse INTERFACE
  "$<BUILD_INTERFACE:TERSE_CHECKED_DEFAULT=$<IF:$<BOOL:${TERSE_CHECKED}>,true,false>>")
file(GLOB_RECURSE terse_public_headers CONFIGURE_DEPENDS
  RELATIVE "${PROJECT_SOURCE_DIR}/include"
  "${PROJECT_SOURCE_DIR}/include/terse/*.hpp"
  "${PROJECT_SOURCE_DIR}/include/terse/*.cuh"
  "${PROJECT_SOURCE_DIR}/include/terse/*.inl")
list(TRANSFORM terse_public_headers PREPEND "${PROJECT_SOURCE_DIR}/include/"
     OUTPUT_VARIABLE terse_header_files)
target_sources(terse INTERFACE
  FILE_SET HEADERS BASE_DIRS "${PROJECT_SOURCE_DIR}/include" FILES ${terse_header_files})
set(terse_exported_targets terse)

if(terse_has_cuda)
  add_library(terse_cuda INTERFACE)
  add_library(terse::cuda ALIAS terse_cuda)
  set_target_properties(terse_cuda PROPERTIES EXPORT_NAME cuda)
  target_link_libraries(terse_cuda INTERFACE terse CUDA::cudart CUDA::cublas)
  target_compile_definitions(terse_cuda INTERFACE TERSE_WITH_CUDA=1)
  list(APPEND terse_exported_targets terse_cuda)
endif()

if(terse_has_nccl)
  add_library(terse_nccl INTERFACE)
  add_library(terse::nccl ALIAS terse_nccl)
  set_target_properties(terse_nccl PROPERTIES EXPORT_NAME nccl)
  target_link_libraries(terse_nccl INTERFACE terse_cuda NCCL::NCCL)
  target_compile_definitions(terse_nccl INTERFACE TERSE_WITH_NCCL=1)
  list(APPEND terse_exported_targets terse_nccl)
endif()

if(terse_has_mpi)
  add_library(terse_mpi INTERFACE)
  add_library(terse::mpi ALIAS terse_mpi)
  set_target_properties(terse_mpi PROPERTIES EXPORT_NAME mpi)
  if(terse_mpi_is_smpi)
    # smpicxx compiles against SMPI's mpi.h and links libsimgrid itself.
    target_link_libraries(terse_mpi INTERFACE terse)
  else()
    target_link_libraries(terse_mpi INTERFACE terse MPI::MPI_CXX)
  endif()
  target_compile_definitions(terse_mpi INTERFACE TERSE_WITH_MPI=1)
  list(APPEND terse_exported_targets terse_mpi)
endif()

# terse::blas (host BLAS for compress::powersgd), in its own file.
include(TerseBlas)

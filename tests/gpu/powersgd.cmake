# PowerSGD's cuBLAS path against the host codec, which needs terse::blas.
if(TARGET terse::blas)
  list(APPEND gpu_test_sources powersgd_test.cu)
  # gpu_tests is made after the fragments are read: link what this test
  # needs once the directory is done.
  cmake_language(DEFER CALL target_link_libraries gpu_tests PRIVATE terse::blas CUDA::cublas)
endif()

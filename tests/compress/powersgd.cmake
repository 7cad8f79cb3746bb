# compress::powersgd: byte interface and the self-reducing path over
# terse::run_local, flat and per tensor. The host products need BLAS (terse::blas).
if(TARGET terse::blas)
  terse_add_test(powersgd_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/powersgd_bytes_test.cpp ${CMAKE_CURRENT_LIST_DIR}/powersgd_reduce_test.cpp
            ${CMAKE_CURRENT_LIST_DIR}/powersgd_tensors_test.cpp ${CMAKE_CURRENT_LIST_DIR}/powersgd_layout_test.cpp
    LIBS terse::blas)
endif()

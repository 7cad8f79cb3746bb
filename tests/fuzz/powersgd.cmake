# compress::powersgd's decoder, flat and per tensor (needs terse::blas for
# the host products).
if(TARGET terse::blas)
  terse_add_fuzzer(powersgd_decode_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/powersgd_decode_fuzz.cpp)
  target_link_libraries(powersgd_decode_fuzz PRIVATE terse::blas)
  terse_add_fuzzer(powersgd_tensors_decode_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/powersgd_tensors_decode_fuzz.cpp)
  target_link_libraries(powersgd_tensors_decode_fuzz PRIVATE terse::blas)
endif()

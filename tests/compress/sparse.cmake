# Sparsifiers: topk, threshold, dgc (gather-only).
terse_add_test(sparse_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/topk_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/threshold_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/dgc_test.cpp)

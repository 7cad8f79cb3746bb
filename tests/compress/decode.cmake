# compress::decode: decoding into a buffer (overwrite, not add).
terse_add_test(decode_tests SOURCES ${CMAKE_CURRENT_LIST_DIR}/decode_test.cpp)

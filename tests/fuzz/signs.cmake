# Decoders of the sign, terngrad and randomk codecs (family `signs`).
terse_add_fuzzer(sign_decode_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/sign_decode_fuzz.cpp)
terse_add_fuzzer(terngrad_decode_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/terngrad_decode_fuzz.cpp)
terse_add_fuzzer(randomk_decode_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/randomk_decode_fuzz.cpp)

# Decoders of the sparsifiers (topk, threshold, dgc).
terse_add_fuzzer(topk_decode_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/topk_decode_fuzz.cpp)
terse_add_fuzzer(threshold_decode_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/threshold_decode_fuzz.cpp)
terse_add_fuzzer(dgc_decode_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/dgc_decode_fuzz.cpp)

# Decoders of the quantizers (family `quantizers`): cast<fp16/bf16>,
# uniform<8/4/2>, qsgd (all field widths in one target) and adaptive.
foreach(codec IN ITEMS cast_fp16 cast_bf16 uniform8 uniform4 uniform2 qsgd adaptive)
  terse_add_fuzzer(${codec}_decode_fuzz SOURCES ${CMAKE_CURRENT_LIST_DIR}/${codec}_decode_fuzz.cpp)
endforeach()

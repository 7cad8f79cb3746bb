# A short run of dense SGD and FDA with a top-k compressed delta: the
# outputs exist and dense SGD learns (test accuracy above 70 %).
execute_process(COMMAND "${STUDY}" ${ARGS} --configs dense,fda-linear+topk,qsgd-5bit --out "${OUT}"
                RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "${out}")
if(NOT code EQUAL 0)
  message(FATAL_ERROR "terse_study failed (${code}):\n${err}")
endif()
foreach(file results.csv curves.csv results.json accuracy_vs_bytes_iid.svg)
  if(NOT EXISTS "${OUT}/${file}")
    message(FATAL_ERROR "terse_study did not write ${OUT}/${file}")
  endif()
endforeach()
file(READ "${OUT}/accuracy_vs_bytes_iid.svg" svg)
if(NOT svg MATCHES "^<svg" OR NOT svg MATCHES "</svg>\n$" OR NOT svg MATCHES "polyline")
  message(FATAL_ERROR "accuracy_vs_bytes_iid.svg is not a complete plot")
endif()
file(READ "${OUT}/results.json" json)
string(JSON runs LENGTH "${json}" runs)  # also checks that the JSON parses
if(NOT runs EQUAL 3)
  message(FATAL_ERROR "results.json holds ${runs} runs, expected 3")
endif()
# results.csv: partition,config,knobs,steps,exchanges,final_accuracy,...
file(STRINGS "${OUT}/results.csv" rows REGEX "^iid,dense,")
list(LENGTH rows found)
if(NOT found EQUAL 1)
  message(FATAL_ERROR "results.csv has no row for dense")
endif()
string(REPLACE "," ";" fields "${rows}")
list(GET fields 5 accuracy)
if(accuracy LESS 0.70)
  message(FATAL_ERROR "dense SGD reached only ${accuracy} test accuracy (expected > 0.70)")
endif()
message(STATUS "dense accuracy ${accuracy}")

# The bytes the study reports are the metered transport's: dense SGD with
# W = 4 on the 784-256-128-10 MLP (235146 floats) sends, per rank and step,
# what a ring allreduce sends: 2 (W - 1) / W of the buffer.
list(GET fields 3 steps)
list(GET fields 7 sent)
math(EXPR expected "${steps} * 2 * 3 * 235146 * 4 / 4")
if(NOT sent EQUAL expected)
  message(FATAL_ERROR "dense sent ${sent} bytes per rank in ${steps} steps, expected ${expected}")
endif()

# The loss falls: dense SGD's last training loss is below its first and
# below 1 (ln 10 = 2.3 is chance; the first evaluation sees about 2.5).
file(STRINGS "${OUT}/curves.csv" points REGEX "^iid,dense,")
list(GET points 0 first)
list(GET points -1 last)
string(REPLACE "," ";" first "${first}")
string(REPLACE "," ";" last "${last}")
list(GET first 7 first_loss)
list(GET last 7 last_loss)
if(NOT last_loss LESS first_loss OR NOT last_loss LESS 1.0)
  message(FATAL_ERROR "dense training loss went from ${first_loss} to ${last_loss}; expected it to fall below 1")
endif()
message(STATUS "dense training loss ${first_loss} -> ${last_loss}, ${sent} bytes per rank")

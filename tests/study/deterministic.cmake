# The same seed gives the same run: data order, non-IID partition, initial
# weights and every stochastic draw come from Philox. Two runs must agree
# on every curve point (all columns but the measured compute time).
foreach(run a b)
  execute_process(COMMAND "${STUDY}" ${ARGS} --partition non-iid --steps 24 --eval-every 8 --seed 7
                          --configs topk-1%,local-H8 --out "${OUT}/${run}"
                  RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "terse_study failed (${code}):\n${out}\n${err}")
  endif()
  file(READ "${OUT}/${run}/curves.csv" curves_${run})
  string(REGEX REPLACE ",[^,\n]*\n" "\n" curves_${run} "${curves_${run}}")
endforeach()
if(NOT curves_a STREQUAL curves_b)
  message(FATAL_ERROR "two runs with the same seed differ:\n${curves_a}\n---\n${curves_b}")
endif()
string(REGEX MATCHALL "\n" lines "${curves_a}")
list(LENGTH lines count)
if(count LESS 7)
  message(FATAL_ERROR "expected 6 curve points, got:\n${curves_a}")
endif()
message(STATUS "identical curves:\n${curves_a}")

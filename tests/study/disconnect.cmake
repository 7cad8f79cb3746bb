cmake_policy(SET CMP0007 NEW)  # results.csv has empty fields
# A worker leaves mid-training: worker 3 of 4 stops after 30 of 60 steps,
# the survivors reroute around it (push-sum keeps the shares meant for it,
# they agree on who is alive, the one-peer graph is rebuilt for 3) and
# finish. The run completes without a failure, the survivors go on learning,
# their per-worker figures count all 60 rounds, and the same seed gives the
# same curves.
foreach(run a b)
  execute_process(COMMAND "${STUDY}" ${ARGS} --eval-every 10 --seed 5 --configs sgp-1peer-exp-disconnect
                          --out "${OUT}/${run}" RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "terse_study failed (${code}):\n${out}\n${err}")
  endif()
  file(READ "${OUT}/${run}/curves.csv" curves_${run})
  string(REGEX REPLACE ",[^,\n]*\n" "\n" curves_${run} "${curves_${run}}")  # drop the measured compute time
endforeach()
message(STATUS "${out}")
if(NOT out MATCHES "worker 3 left after step 30; the survivors mixed on their own graph from round 33")
  message(FATAL_ERROR "expected worker 3 to leave after step 30 and the survivors to agree at round 32")
endif()
if(out MATCHES "FAILED|stopped at step")
  message(FATAL_ERROR "the survivors should finish the run")
endif()
if(NOT curves_a STREQUAL curves_b)
  message(FATAL_ERROR "two runs with the same seed differ:\n${curves_a}\n---\n${curves_b}")
endif()

# results.csv: partition,config,knobs,steps,exchanges,final_accuracy,... bytes_sent_per_rank (8th field).
file(STRINGS "${OUT}/a/results.csv" line REGEX "^iid,sgp-1peer-exp-disconnect,")
string(REPLACE "," ";" fields "${line}")
list(GET fields 4 rounds)
list(GET fields 5 accuracy)
list(GET fields 7 sent)
list(GET fields -2 decentralized)
# Per survivor: 60 push-sum frames of 32 + (n + 1) * 4 bytes with n = 235146
# floats, plus the membership agreements (every 8 rounds, a few hundred bytes).
math(EXPR frames "60 * (32 + 235147 * 4)")
math(EXPR ceiling "${frames} + 20000")
if(NOT rounds EQUAL 60 OR sent LESS frames OR sent GREATER ceiling OR NOT decentralized EQUAL 1)
  message(FATAL_ERROR "survivors ran ${rounds} rounds and sent ${sent} bytes each, expected 60 and "
                      "${frames} to ${ceiling}")
endif()

# The survivors' averaged model still learns after the departure: accuracy
# at the last point above the point at step 30 (the last with every worker)
# and above 60 %.
string(REGEX MATCH "\niid,sgp-1peer-exp-disconnect,30,[^,]*,[^,]*,([^,]*)," at_leave "${curves_a}")
set(before ${CMAKE_MATCH_1})
if(NOT accuracy GREATER before OR accuracy LESS 0.6)
  message(FATAL_ERROR "accuracy ${accuracy} at the end, ${before} when worker 3 left")
endif()
message(STATUS "identical curves; ${rounds} rounds, ${sent} bytes per survivor, accuracy ${before} -> ${accuracy}")

# A departure outside the world or the run stops that row with a message.
execute_process(COMMAND "${STUDY}" ${ARGS} --configs sgp-1peer-exp-disconnect --set sgp-1peer-exp-disconnect.leave_rank=9
                        --out "${OUT}/bad" RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT out MATCHES "stopped at step 0: terse: invalid argument: sgp-1peer-exp-disconnect: leave_rank=9 is not a rank of 4")
  message(FATAL_ERROR "leave_rank=9 of 4 workers should stop the row:\n${out}\n${err}")
endif()

# The study on a simulated cluster (smpirun, --declared-compute): two
# identical runs must report identical simulated times, the times must be
# positive and grow along each curve, and the same run on a slower network
# (cluster_10g against cluster_100g) must take longer.
# Inputs: STUDY, SMPIRUN, PLATFORMS (the platforms/ directory), DATA, OUT,
# FLAGS (smpirun flags, |-separated).
string(REPLACE "|" ";" FLAGS "${FLAGS}")
set(study_args --transport mpi --declared-compute gpu --data "${DATA}" --train-limit 1024 --test-limit 256
               --epochs 1 --eval-every 4 --configs dense,uniform-4bit --no-progress)

function(run_study platform out)
  execute_process(COMMAND "${SMPIRUN}" -np 4 -platform "${PLATFORMS}/${platform}.xml" -hostfile
                          "${PLATFORMS}/${platform}.hosts" ${FLAGS} --cfg=smpi/simulate-computation:no "${STUDY}"
                          ${study_args} --out "${OUT}/${out}"
                  RESULT_VARIABLE code OUTPUT_VARIABLE text ERROR_VARIABLE err)
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "terse_study under smpirun (${platform}) failed (${code}):\n${text}\n${err}")
  endif()
  if(NOT text MATCHES "simulated cluster \\(SMPI, declared compute\\)")
    message(FATAL_ERROR "no time-to-accuracy table in the output:\n${text}")
  endif()
endfunction()

# simulated_s (the last column) of every evaluation, as a list.
function(read_times out variable)
  file(STRINGS "${OUT}/${out}/simulated_curves.csv" lines)
  list(REMOVE_AT lines 0)
  set(times "")
  foreach(line IN LISTS lines)
    string(REGEX MATCH "[^,]*$" t "${line}")
    list(APPEND times "${t}")
  endforeach()
  set(${variable} "${times}" PARENT_SCOPE)
endfunction()

run_study(cluster_10g a)
run_study(cluster_10g b)
run_study(cluster_100g fast)
file(READ "${OUT}/a/simulated_curves.csv" curves_a)
file(READ "${OUT}/b/simulated_curves.csv" curves_b)
if(NOT curves_a STREQUAL curves_b)
  message(FATAL_ERROR "two identical runs gave different simulated times:\n${curves_a}\n---\n${curves_b}")
endif()

read_times(a slow)
read_times(fast fast)
list(LENGTH slow count)
if(NOT count EQUAL 4)  # 8 steps (1024 examples / (4 x 32)), evaluated at 4 and 8, two configurations
  message(FATAL_ERROR "expected 4 evaluations, got ${count}:\n${curves_a}")
endif()
set(previous 0)
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  list(GET slow ${i} t10)
  list(GET fast ${i} t100)
  if(NOT t10 GREATER 0 OR NOT t100 GREATER 0)
    message(FATAL_ERROR "evaluation ${i}: simulated time not positive (${t10} s at 10 Gb/s, ${t100} s at 100 Gb/s)")
  endif()
  if(NOT t10 GREATER t100)
    message(FATAL_ERROR "evaluation ${i}: ${t10} s at 10 Gb/s is not slower than ${t100} s at 100 Gb/s")
  endif()
  if(i EQUAL 2)
    set(previous 0)  # the second configuration's curve starts again
  endif()
  if(NOT t10 GREATER previous)
    message(FATAL_ERROR "evaluation ${i}: simulated time ${t10} s does not grow along the curve:\n${curves_a}")
  endif()
  set(previous ${t10})
endforeach()
file(READ "${OUT}/a/time_to_accuracy.csv" summary)
message(STATUS "identical simulated times; 10 Gb/s: ${slow} s, 100 Gb/s: ${fast} s\n${summary}")

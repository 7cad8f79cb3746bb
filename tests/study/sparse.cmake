# A short run of top-k 1 % aggregated by allgather (topk-1%) and by the
# sparse reduce-scatter (topk-1%-rs): each sends, per worker and step, what
# its formula says, the reduce-scatter fewer bytes, and both learn.
execute_process(COMMAND "${STUDY}" ${ARGS} --configs topk-1%,topk-1%-rs --out "${OUT}"
                RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "${out}")
if(NOT code EQUAL 0)
  message(FATAL_ERROR "terse_study failed (${code}):\n${err}")
endif()

# results.csv: partition,config,knobs,steps,exchanges,final_accuracy,best_accuracy,bytes_sent_per_rank,...
function(row config out_var)
  file(STRINGS "${OUT}/results.csv" line REGEX "^iid,${config},")
  list(LENGTH line found)
  if(NOT found EQUAL 1)
    message(FATAL_ERROR "results.csv has no row for ${config}")
  endif()
  string(REPLACE "," ";" fields "${line}")
  set(${out_var} "${fields}" PARENT_SCOPE)
endfunction()

# W = 4 on the 784-256-128-10 MLP: compressed weights of 200704, 32768 and
# 1280 values (each divisible by 4); the 394 biases averaged dense, which
# sends 2 (W - 1) / W * 394 * 4 = 2364 bytes per rank on average. Frames:
# 9 + 24 + 8 k bytes, k = ceil(0.01 m).
# allgather: per weight tensor (W - 1) (8 + 9 + 24 + 8 k), k over the tensor:
#   3 (41 + 8 * 2008) + 3 (41 + 8 * 328) + 3 (41 + 8 * 13) + 2364 = 59109
# reduce-scatter: per tensor 2 (W - 1) (33 + 8 k), k over a quarter of it:
#   6 (33 + 8 * 502) + 6 (33 + 8 * 82) + 6 (33 + 8 * 4) + 2364 = 31182
foreach(config_bytes "topk-1%;59109" "topk-1%-rs;31182")
  list(GET config_bytes 0 config)
  list(GET config_bytes 1 per_step)
  row(${config} fields)
  list(GET fields 3 steps)
  list(GET fields 7 sent)
  list(GET fields 5 accuracy)
  math(EXPR expected "${steps} * ${per_step}")
  if(NOT sent EQUAL expected)
    message(FATAL_ERROR "${config} sent ${sent} bytes per worker in ${steps} steps, expected ${expected}")
  endif()
  if(accuracy LESS 0.6)
    message(FATAL_ERROR "${config} reached only ${accuracy} test accuracy (expected > 0.6)")
  endif()
  message(STATUS "${config}: ${sent} bytes per worker, accuracy ${accuracy}")
endforeach()

# A short run of the decentralized rows on a validation split: each gossip
# row finishes, sends the bytes its mixer's formula says, mixes (its
# consensus distance is finite and far below that of workers that never
# mix), and the consensus plot is written.
execute_process(COMMAND "${STUDY}" ${ARGS} --validation 2000
                        --configs dpsgd-ring,sgp-1peer-exp,choco-ring-sign,local-H32 --set local-H32.H=100000
                        --out "${OUT}" RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "${out}")
if(NOT code EQUAL 0)
  message(FATAL_ERROR "terse_study failed (${code}):\n${err}")
endif()
if(NOT out MATCHES "10000 train, 2000 validation")
  message(FATAL_ERROR "--validation 2000 should hold 2000 of the 12000 training examples out")
endif()
file(READ "${OUT}/consensus_distance_iid.svg" svg)
if(NOT svg MATCHES "^<svg" OR NOT svg MATCHES "</svg>\n$" OR NOT svg MATCHES "polyline" OR NOT svg MATCHES "dpsgd-ring")
  message(FATAL_ERROR "consensus_distance_iid.svg is not a complete plot")
endif()

# results.csv: partition,config,knobs,steps,exchanges,final_accuracy,best_accuracy,bytes_sent_per_rank,... and,
# last, decentralized,final_consensus_distance.
function(row config out_var)
  file(STRINGS "${OUT}/results.csv" line REGEX "^iid,${config},")
  list(LENGTH line found)
  if(NOT found EQUAL 1)
    message(FATAL_ERROR "results.csv has no row for ${config}")
  endif()
  string(REPLACE "," ";" fields "${line}")
  set(${out_var} "${fields}" PARENT_SCOPE)
endfunction()

# The decimal exponent of a number results.csv writes as %.9e.
function(exponent value out_var)
  if(NOT value MATCHES "^[0-9]\\.[0-9]+e([-+][0-9]+)$")
    message(FATAL_ERROR "'${value}' is not a finite non-negative number in %e form")
  endif()
  math(EXPR e "${CMAKE_MATCH_1}")
  set(${out_var} ${e} PARENT_SCOPE)
endfunction()

row(local-H32 never)
list(GET never -1 never_distance)
exponent(${never_distance} never_exponent)
list(GET never 7 never_sent)
if(NOT never_sent EQUAL 0 OR NOT never_distance GREATER 0)
  message(FATAL_ERROR "workers that never average sent ${never_sent} bytes and drifted ${never_distance} apart")
endif()

# Per worker and step, with a 32-byte header per message and n = 235146
# floats: ring D-PSGD sends its model to 2 neighbours, push-sum on the
# one-peer exponential graph sends (z, w) to 1 peer.
set(n 235146)
foreach(config_bytes "dpsgd-ring;2 * (32 + ${n} * 4)" "sgp-1peer-exp;32 + (${n} + 1) * 4")
  list(GET config_bytes 0 config)
  list(GET config_bytes 1 formula)
  row(${config} fields)
  list(GET fields 3 steps)
  list(GET fields 4 rounds)
  list(GET fields 7 sent)
  list(GET fields -2 decentralized)
  list(GET fields -1 distance)
  math(EXPR expected "${steps} * (${formula})")
  if(NOT sent EQUAL expected OR NOT rounds EQUAL steps OR NOT decentralized EQUAL 1)
    message(FATAL_ERROR "${config} sent ${sent} bytes per worker in ${rounds} rounds of ${steps} steps, "
                        "expected ${expected} in ${steps}")
  endif()
  # Mixing every step keeps the replicas at least two decades closer than
  # workers that never mix.
  exponent(${distance} distance_exponent)
  math(EXPR room "${never_exponent} - ${distance_exponent}")
  if(room LESS 2)
    message(FATAL_ERROR "${config}: consensus distance ${distance}, not 100x below no mixing's ${never_distance}")
  endif()
  message(STATUS "${config}: ${sent} bytes per worker, consensus distance ${distance} (no mixing: ${never_distance})")
endforeach()

# CHOCO with 1-bit signs sends far less than D-PSGD and still mixes.
row(choco-ring-sign choco)
row(dpsgd-ring dense_ring)
list(GET choco 7 choco_sent)
list(GET dense_ring 7 ring_sent)
list(GET choco -1 choco_distance)
exponent(${choco_distance} choco_exponent)
list(GET choco 5 choco_accuracy)
math(EXPR ceiling "${ring_sent} / 20")
if(NOT choco_sent LESS ceiling OR NOT choco_distance LESS never_distance OR choco_accuracy LESS 0.6)
  message(FATAL_ERROR "choco-ring-sign sent ${choco_sent} bytes (D-PSGD ${ring_sent}), consensus distance "
                      "${choco_distance} (no mixing ${never_distance}), accuracy ${choco_accuracy}")
endif()
message(STATUS "choco-ring-sign: ${choco_sent} bytes, consensus distance ${choco_distance}, accuracy ${choco_accuracy}")

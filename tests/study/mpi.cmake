# The study over real processes: mpirun -np 4 terse_study --transport mpi
# trains exactly as 4 in-process workers do. terse's mpi transport sums in
# the local transport's order, so both runs must agree on every curve point
# (all columns but the measured compute time) and on the bytes.
set(configs --configs dense,fda-linear+topk,qsgd-5bit --steps 24 --eval-every 8)
execute_process(COMMAND "${STUDY}" ${ARGS} ${configs} --out "${OUT}/local" RESULT_VARIABLE code
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "terse_study (local) failed (${code}):\n${out}\n${err}")
endif()
string(REPLACE "|" ";" MPIRUN "${MPIRUN}")
execute_process(COMMAND ${MPIRUN} "${STUDY}" ${ARGS} ${configs} --transport mpi --out "${OUT}/mpi"
                RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "terse_study (mpi) failed (${code}):\n${out}\n${err}")
endif()
if(NOT out MATCHES "4 MPI processes")
  message(FATAL_ERROR "the mpi run did not report 4 MPI processes:\n${out}")
endif()
foreach(run local mpi)
  file(READ "${OUT}/${run}/curves.csv" curves_${run})
  string(REGEX REPLACE ",[^,\n]*\n" "\n" curves_${run} "${curves_${run}}")
endforeach()
if(NOT curves_local STREQUAL curves_mpi)
  message(FATAL_ERROR "4 MPI processes trained differently from 4 threads:\n${curves_local}\n---\n${curves_mpi}")
endif()
string(REGEX MATCHALL "\n" lines "${curves_mpi}")
list(LENGTH lines count)
if(NOT count EQUAL 10)
  message(FATAL_ERROR "expected 9 curve points (3 configurations x 3), got:\n${curves_mpi}")
endif()
message(STATUS "identical curves over MPI and threads:\n${curves_mpi}")

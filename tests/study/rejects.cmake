# Runs terse_study with bad arguments (BAD) and checks that it exits with
# CODE and says EXPECT on stderr (never a crash, never success). BAD
# separates the arguments with '|'.
string(REPLACE "|" ";" BAD "${BAD}")
file(MAKE_DIRECTORY "${OUT}")
string(REPLACE ";" " " shown "${BAD}")
execute_process(COMMAND "${STUDY}" --out "${OUT}" --no-progress ${BAD} RESULT_VARIABLE code ERROR_VARIABLE err
                OUTPUT_VARIABLE out)
if(NOT "${code}" STREQUAL "${CODE}")
  message(FATAL_ERROR "terse_study ${shown}: exit code '${code}', expected ${CODE}\n${err}")
endif()
if(NOT err MATCHES "${EXPECT}")
  message(FATAL_ERROR "terse_study ${shown}: stderr does not say '${EXPECT}':\n${err}")
endif()
message(STATUS "terse_study ${shown}: exit ${code}: ${err}")

# Fails unless README.md quotes examples/quick_start.cpp verbatim.
file(READ "${README}" readme)
file(READ "${EXAMPLE}" example)
string(FIND "${readme}" "```cpp\n${example}```" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md's quick start differs from examples/quick_start.cpp: update one to match the other")
endif()

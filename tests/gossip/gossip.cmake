terse_add_test(gossip_tests SOURCES mixers_test.cpp choco_test.cpp push_sum_test.cpp bytes_test.cpp failure_test.cpp
               state_test.cpp TIMEOUT 300)
target_include_directories(gossip_tests PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}")
# Its own binary: it replaces the global operator new to count allocations.
terse_add_test(gossip_allocation_tests SOURCES allocation_test.cpp)
target_include_directories(gossip_allocation_tests PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}")

terse_add_test(gossip_tests SOURCES mixers_test.cpp choco_test.cpp push_sum_test.cpp bytes_test.cpp failure_test.cpp
               state_test.cpp TIMEOUT 300)
target_include_directories(gossip_tests PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}")

# Re-planned topologies (the measurement exchange, replay, save/load) and clustered gossip.
terse_add_test(gossip_replanning_tests SOURCES replanning_test.cpp)
target_include_directories(gossip_replanning_tests PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}")

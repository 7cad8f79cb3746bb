# Gossip that survives failed ranks: rerouting, membership agreement, the
# survivors' topology (failure_policy::reroute, failure_scope::peer).
terse_add_test(gossip_failure_tests SOURCES reroute_test.cpp reroute_later_test.cpp reroute_decorated_test.cpp membership_test.cpp
               survivors_test.cpp TIMEOUT 120)
target_include_directories(gossip_failure_tests PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}")

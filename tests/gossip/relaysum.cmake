# RelaySum on trees: exact after each rank's eccentricity, not before.
terse_add_test(relaysum_tests SOURCES relaysum_test.cpp)

terse_add_test(schedules_tests SOURCES
  fda_test.cpp)

# Schedules that drive the exchange: adaptive intervals, event triggers,
# FDA, and the outer optimizers SlowMo and BMUF over any base.
terse_add_test(schedules_tests SOURCES
  adaptive_interval_test.cpp
  event_triggered_test.cpp
  fda_test.cpp
  slowmo_test.cpp
  bmuf_test.cpp
  convergence_test.cpp
  allocation_test.cpp
  blocked_sum_test.cpp)

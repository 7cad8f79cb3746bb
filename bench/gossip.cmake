# One gossip round (D-PSGD, push-sum, CHOCO over ring and exponential
# graphs) against one allreduce step on a modelled network.
add_executable(bench_gossip gossip.cpp)
target_link_libraries(bench_gossip PRIVATE terse_bench_support)

# The hierarchical allreduce against the flat one on a modelled two-level
# cluster (nodes of 8 at 100 Gb/s, 10 Gb/s between nodes).
add_executable(bench_hierarchical hierarchical.cpp)
target_link_libraries(bench_hierarchical PRIVATE terse_bench_support)

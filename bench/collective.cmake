# The compressed allreduce against the dense one on a modelled network.
add_executable(bench_compressed_vs_dense compressed_vs_dense.cpp)
target_link_libraries(bench_compressed_vs_dense PRIVATE terse_bench_support $<TARGET_NAME_IF_EXISTS:terse::blas>)

# One step overlapped with a modelled backward pass against the synchronous step.
add_executable(bench_overlap overlap.cpp)
target_link_libraries(bench_overlap PRIVATE terse_bench_support)

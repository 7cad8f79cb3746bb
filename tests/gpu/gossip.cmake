# Gossip of device buffers, staged through pinned host memory (terse/collective/gossip_cuda.hpp).
list(APPEND gpu_test_sources gossip_device_test.cpp)

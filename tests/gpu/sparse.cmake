# The sparsifiers (topk, threshold, dgc) on the device against the host codecs.
list(APPEND gpu_test_sources sparse_test.cu)

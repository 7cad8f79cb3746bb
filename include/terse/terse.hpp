#pragma once
/// @file
/// Umbrella header: everything a host build can use. Backend pieces join
/// when their component is linked (terse::mpi defines TERSE_WITH_MPI,
/// terse::cuda TERSE_WITH_CUDA, terse::nccl TERSE_WITH_NCCL, terse::blas
/// TERSE_WITH_BLAS). Device kernels (terse/cuda/*.cuh, e.g. the compressed
/// allreduce on device buffers, terse/cuda/allreduce.cuh) are included by
/// name from translation units compiled by nvcc.

#include <terse/collective/allreduce.hpp>
#include <terse/collective/clustered_gossip.hpp>
#include <terse/collective/gossip.hpp>
#include <terse/collective/groups.hpp>
#include <terse/collective/hierarchical.hpp>
#include <terse/collective/layout.hpp>
#include <terse/collective/mixers.hpp>
#include <terse/collective/relaysum.hpp>
#include <terse/collective/replanning.hpp>
#include <terse/compress/adaptive.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/decode.hpp>
#include <terse/compress/dgc.hpp>
#include <terse/compress/identity.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/randomk.hpp>
#include <terse/compress/sign.hpp>
#include <terse/compress/terngrad.hpp>
#include <terse/compress/threshold.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/config.hpp>
#include <terse/core/error.hpp>
#include <terse/core/memory_space.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/stream.hpp>
#include <terse/core/tensor_shape.hpp>
#include <terse/core/verbs.hpp>
#include <terse/cost/choice.hpp>
#include <terse/cost/model.hpp>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/none.hpp>
#include <terse/feedback/periodic_flush.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/adaptive_interval.hpp>
#include <terse/schedule/bmuf.hpp>
#include <terse/schedule/event_triggered.hpp>
#include <terse/schedule/every_step.hpp>
#include <terse/schedule/fda.hpp>
#include <terse/schedule/periodic.hpp>
#include <terse/schedule/slowmo.hpp>
#include <terse/topology.hpp>
#include <terse/transport/faulty.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#if defined(TERSE_WITH_BLAS)
#include <terse/compress/powersgd.hpp>
#endif
#if defined(TERSE_WITH_CUDA)
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/cuda_workspace.hpp>
#endif
#if defined(TERSE_WITH_MPI)
#include <terse/transport/mpi.hpp>
#endif
#if defined(TERSE_WITH_NCCL)
#include <terse/transport/nccl.hpp>
#endif

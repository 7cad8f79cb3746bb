#pragma once
/// @file
/// `terse::staged_gossip`: gossip of device buffers. Each round copies the
/// trainer's device vector into pinned host memory on the trainer's stream,
/// waits for that copy (the round's one host synchronisation, under the
/// transport's deadline), runs the round of the wrapped `terse::gossip` on
/// the host copy over any host transport, and copies the mixed values back
/// on the stream without waiting. So a CUDA trainer gossips over threads or
/// MPI processes, several ranks on one GPU included, with every mixer; the
/// price is two PCIe copies of the vector per round, as for a transport
/// that stages device memory. Needs the CUDA runtime (terse::cuda), not nvcc.
///
/// @code
/// terse::gossip mix(transport, n, terse::topology::one_peer_exponential(world));
/// terse::staged_gossip device_mix(mix);
/// optimizer_step<<<..., stream>>>(params, grads);
/// device_mix.on_parameters(params_span, stream);   // stream-ordered: later kernels see the mixed values
/// @endcode

#include <terse/collective/gossip.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/error.hpp>
#include <terse/core/span.hpp>
#include <terse/core/stream.hpp>

#include <cuda_runtime_api.h>

#include <chrono>
#include <string>
#include <thread>

namespace terse {

/// Runs the rounds of `Gossip` (a terse::gossip over a host transport) on
/// device buffers. Holds a reference: the gossip collective must outlive it.
template <class Gossip>
class staged_gossip {
 public:
  using value_type = typename Gossip::value_type;

  explicit staged_gossip(Gossip& inner) : inner_(&inner)
  {
    staging_.reserve(inner.count() == 0 ? 1 : inner.count());
    TERSE_CUDA_TRY(cudaEventCreateWithFlags(&copied_back_, cudaEventDisableTiming));
  }
  staged_gossip(const staged_gossip&) = delete;
  staged_gossip& operator=(const staged_gossip&) = delete;
  ~staged_gossip()
  {
    // The last copy back reads the pinned buffer: let it finish first.
    TERSE_CUDA_TRY_NOTHROW(cudaEventSynchronize(copied_back_));
    TERSE_CUDA_TRY_NOTHROW(cudaEventDestroy(copied_back_));
  }

  /// After the optimizer step (enqueued on `stream`): gossips when the
  /// wrapped collective's schedule asks for it.
  sync_action on_parameters(device_span<value_type> parameters, stream_ref stream = {})
  {
    download(parameters, stream);
    const sync_action action = inner_->on_parameters(host_span<value_type>(staging_.data(), parameters.size()));
    if (action == sync_action::average) {
      upload(parameters, stream);
    }
    return action;
  }

  /// One round now on `values`, ordered on `stream`.
  void mix(device_span<value_type> values, stream_ref stream = {})
  {
    download(values, stream);
    inner_->mix(host_span<value_type>(staging_.data(), values.size()));
    upload(values, stream);
  }

  Gossip& inner() noexcept { return *inner_; }

 private:
  void download(device_span<value_type> values, stream_ref stream)
  {
    TERSE_EXPECTS(values.size() == inner_->count(), "the buffer has " + std::to_string(values.size()) +
                                                        " elements; this gossip mixes " +
                                                        std::to_string(inner_->count()));
    const auto s = stream.as<cudaStream_t>();
    // A previous round's copy back may still read the pinned buffer (on
    // another stream): the device waits for it, the host does not.
    TERSE_CUDA_TRY(cudaStreamWaitEvent(s, copied_back_, 0));
    TERSE_CUDA_TRY(cudaMemcpyAsync(staging_.data(), values.data(), values.size_bytes(), cudaMemcpyDeviceToHost, s));
    wait_for(s);
  }

  void upload(device_span<value_type> values, stream_ref stream)
  {
    const auto s = stream.as<cudaStream_t>();
    TERSE_CUDA_TRY(cudaMemcpyAsync(values.data(), staging_.data(), values.size_bytes(), cudaMemcpyHostToDevice, s));
    TERSE_CUDA_TRY(cudaEventRecord(copied_back_, s));
  }

  // The round's host synchronisation, under the transport's deadline: a
  // stream stuck behind a hung kernel is an error, not a hang.
  void wait_for(cudaStream_t s)
  {
    const auto deadline = std::chrono::steady_clock::now() + timeout();
    for (;;) {
      const cudaError_t state = cudaStreamQuery(s);
      if (state == cudaSuccess) {
        return;
      }
      if (state != cudaErrorNotReady) {
        TERSE_CUDA_TRY(state);
      }
      TERSE_CHECK(std::chrono::steady_clock::now() < deadline, errc::timeout,
                  "the trainer's stream did not reach the gossip round's copy within the transport's timeout");
      std::this_thread::yield();
    }
  }

  std::chrono::milliseconds timeout() const
  {
    if constexpr (requires { inner_->transport().options().timeout; }) {
      return inner_->transport().options().timeout;
    } else {
      return std::chrono::seconds(60);
    }
  }

  Gossip* inner_;
  pinned_buffer<value_type> staging_;
  cudaEvent_t copied_back_ = nullptr;
};

}  // namespace terse

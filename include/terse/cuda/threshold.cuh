#pragma once
/// @file
/// Device `compress::threshold`: the host codec's bytes (every |v| >= tau,
/// indices ascending) from two reads of the input: a counting pass (which
/// also finds NaN and Inf) sizes the output, then cub::DeviceSelect::If
/// keeps the pairs in order. Every call waits for its stream.

#include <terse/compress/threshold.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/cuda/detail/sparse_device.cuh>

#include <cuda_runtime_api.h>

#include <cstddef>

namespace terse::cuda {

/// Writes the threshold payload of `in` (device memory) to `out` (device
/// memory, at least max_encoded_bytes(n) = 24 + 8n bytes); returns its size
/// 24 + 8c. Raises errc::non_finite for NaN or Inf in `in`.
inline std::size_t encode(const compress::threshold& codec, const codec_context&, device_span<const float> in,
                          device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = detail::sparse_threads;
  TERSE_EXPECTS(detail::valid_threshold(codec.tau), "threshold tau must be finite and >= 0");
  const std::size_t n = in.size();
  detail::check_sparse_encode_args(n, out.size(), codec.max_encoded_bytes(n), "threshold");
  const std::uint32_t key = detail::magnitude_key(codec.tau);
  auto* scratch = detail::sparse_scratch(workspace, stream);
  const detail::sparse_device_scratch counted =
      detail::sparse_device_count(in.data(), n, nullptr, key, scratch, stream, workspace);
  if (counted.non_finite != 0) {
    detail::sparse_throw_non_finite("threshold");
  }
  const std::uint64_t c = counted.count;
  detail::sparse_device_at_least(in.data(), n, nullptr, key, c, out.data() + wire::header_bytes, scratch, stream,
                                 workspace);
  detail::sparse_header_kernel<threads><<<1, threads, 0, stream>>>(
      out.data(), detail::sparse_make_header(compress::threshold::id, detail::bits_float(key), n, c));
  TERSE_CUDA_TRY(cudaGetLastError());
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
  return wire::header_bytes + static_cast<std::size_t>(detail::sparse_body_bytes(c));
}

/// Validates `payload` (device memory) as the host decoder does (|v| >= tau
/// included), then acc += decode. Malformed: errc::malformed_payload, `acc`
/// untouched.
inline void decode_add(const compress::threshold&, const codec_context&, device_span<const std::byte> payload,
                       device_span<float> acc, cudaStream_t stream, device_workspace& workspace)
{
  const std::uint64_t n = acc.size();
  detail::sparse_device_decode_add(
      payload, acc, compress::threshold::id,
      [n](std::uint32_t param, std::uint64_t count) { return compress::threshold::header_verdict(param, count, n); },
      stream, workspace);
}

}  // namespace terse::cuda

#pragma once
/// @file
/// Device `compress::topk`: the host codec's bytes (the exact top k, ties to
/// the lower index, indices ascending), from two reads of the input; see
/// detail/sparse_device.cuh for the selection. Every call waits for its
/// stream before returning.

#include <terse/compress/topk.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/cuda/detail/sparse_device.cuh>

#include <cuda_runtime_api.h>

#include <cstddef>

namespace terse::cuda {

/// Writes the topk payload of `in` (device memory) to `out` (device memory,
/// at least max_encoded_bytes(n) bytes); returns 24 + 8k. Raises
/// errc::non_finite for NaN or Inf in `in`.
inline std::size_t encode(const compress::topk& codec, const codec_context&, device_span<const float> in,
                          device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = detail::sparse_threads;
  const std::size_t n = in.size();
  const std::size_t k = codec.pairs(n);
  const std::size_t bytes = codec.max_encoded_bytes(n);
  detail::check_sparse_encode_args(n, out.size(), bytes, "topk");
  detail::sparse_header_kernel<threads>
      <<<1, threads, 0, stream>>>(out.data(), detail::sparse_make_header(compress::topk::id, codec.density, n, k));
  TERSE_CUDA_TRY(cudaGetLastError());
  std::byte* body = out.data() + wire::header_bytes;
  if (k == n && n != 0) {
    detail::sparse_device_all(in.data(), n, body, stream, workspace, "topk");
  } else if (k != 0) {
    (void)detail::sparse_device_top_k(in.data(), n, k, body, stream, workspace, "topk");
  }
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
  return bytes;
}

/// Validates `payload` (device memory) as the host decoder does, then
/// acc += decode. Malformed: errc::malformed_payload, `acc` untouched.
inline void decode_add(const compress::topk&, const codec_context&, device_span<const std::byte> payload,
                       device_span<float> acc, cudaStream_t stream, device_workspace& workspace)
{
  const std::uint64_t n = acc.size();
  detail::sparse_device_decode_add(
      payload, acc, compress::topk::id,
      [n](std::uint32_t param, std::uint64_t count) { return compress::topk::header_verdict(param, count, n); }, stream,
      workspace);
}

}  // namespace terse::cuda

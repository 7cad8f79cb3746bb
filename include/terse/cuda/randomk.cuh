#pragma once
/// @file
/// Device `compress::randomk`: the same indices, values and payload bytes as
/// the host codec. The index set comes from the host codec's sampler (and
/// its per-bucket cache), so host and device can never disagree on it; it
/// is uploaded through the workspace's pinned slot (8 bytes per index, the
/// same size as the values themselves). The functions therefore take the
/// codec by non-const reference, like its host members.
///
/// Kernels: a finiteness scan of the whole input (non-finite anywhere is
/// errc::non_finite, the host's policy), a gather of v[idx] * scale
/// (detail::randomk_value, saturating), and for decoding a validation of
/// the k values before a scatter-add (indices are distinct: no atomics).

#include <terse/compress/detail/randomk_math.hpp>
#include <terse/compress/randomk.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/cuda/detail/signs_device.cuh>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace terse::detail {

/// ORs non_finite into the status word when any value is NaN or Inf.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    randomk_finite_kernel(const float* in, std::uint64_t n, std::uint32_t* status)
{
  std::uint32_t bad = 0;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    bad |= (float_bits(in[i]) & 0x7fffffffu) + 0x00800000u;
  }
  if (__syncthreads_or((bad & 0x80000000u) != 0) && threadIdx.x == 0) {
    atomicOr(status, signs_status_non_finite);
  }
}

/// value m = in[idx[m]] * scale, to a float array or to payload bytes.
template <int Threads, class Store>
__global__ void __launch_bounds__(Threads)
    randomk_gather_kernel(const float* in, const std::uint64_t* idx, std::uint64_t k, float scale, Store store)
{
  const std::uint64_t m = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x;
  if (m < k) {
    store(m, randomk_value(in[idx[m]], scale));
  }
}

struct randomk_store_floats {
  float* wire;
  __device__ void operator()(std::uint64_t m, float v) const { wire[m] = v; }
};
struct randomk_store_bytes {
  std::byte* body;
  __device__ void operator()(std::uint64_t m, float v) const { signs_store_u32(body + 4 * m, float_bits(v)); }
};

/// Every value of a byte payload must be finite.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    randomk_validate_kernel(const std::byte* body, std::uint64_t k, std::uint32_t* status)
{
  const std::uint64_t m = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x;
  if (m < k && (signs_load_u32(body + 4 * m) & 0x7f800000u) == 0x7f800000u) {
    atomicOr(status, signs_status_malformed);
  }
}

/// out[idx[m]] (+)= value m, from a float array or payload bytes.
template <int Threads, bool Add>
__global__ void __launch_bounds__(Threads) randomk_scatter_kernel(const float* wire, const std::byte* body,
                                                                  const std::uint64_t* idx, std::uint64_t k, float* out)
{
  const std::uint64_t m = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x;
  if (m < k) {
    const float v = wire != nullptr ? wire[m] : bits_float(signs_load_u32(body + 4 * m));
    if constexpr (Add) {
      out[idx[m]] += v;
    } else {
      out[idx[m]] = v;
    }
  }
}

/// The host codec's index set for `ctx`, copied to device scratch slot 0.
inline const std::uint64_t* randomk_upload_indices(compress::randomk& codec, const codec_context& ctx, std::size_t n,
                                                   cudaStream_t stream, device_workspace& workspace)
{
  const auto idx = codec.indices(ctx, n);
  auto* device = workspace.scratch<std::uint64_t>(0, idx.size() + 1);
  if (!idx.empty()) {
    // Through pinned memory, so the copy is asynchronous; every call of this
    // family waits for its stream before returning, so the slot is free.
    auto* pinned = workspace.pinned<std::uint64_t>(idx.size());
    std::memcpy(pinned, idx.data(), idx.size_bytes());
    TERSE_CUDA_TRY(cudaMemcpyAsync(device, pinned, idx.size_bytes(), cudaMemcpyHostToDevice, stream));
  }
  return device;
}

/// Scans `in` for NaN and Inf (no wait).
inline void randomk_scan(device_span<const float> in, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = signs_threads;
  if (in.empty()) {
    return;
  }
  const unsigned blocks = signs_blocks(in.size(), threads) < 1024u ? signs_blocks(in.size(), threads) : 1024u;
  randomk_finite_kernel<threads><<<blocks, threads, 0, stream>>>(in.data(), in.size(), workspace.status());
  TERSE_CUDA_TRY(cudaGetLastError());
}

}  // namespace terse::detail

namespace terse::cuda {

/// wire[m] = in[idx_m] * scale on the device (the host's encode_values).
/// Throws errc::non_finite for NaN or Inf anywhere in `in`. Waits for
/// `stream` (after the upload of the indices and the scan).
inline void encode_values(compress::randomk& codec, const codec_context& ctx, device_span<const float> in,
                          device_span<float> wire, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = detail::signs_threads;
  const std::size_t n = in.size();
  const std::size_t k = codec.wire_count(n);
  TERSE_EXPECTS(wire.size() == k, "randomk encode_values needs wire_count(n) values");
  detail::randomk_scan(in, stream, workspace);
  const std::uint64_t* idx = detail::randomk_upload_indices(codec, ctx, n, stream, workspace);
  if (k != 0) {
    detail::randomk_gather_kernel<threads><<<detail::signs_blocks(k, threads), threads, 0, stream>>>(
        in.data(), idx, k, codec.scale(n), detail::randomk_store_floats{wire.data()});
    TERSE_CUDA_TRY(cudaGetLastError());
  }
  detail::signs_check_finite(workspace, stream, "randomk encode_values");
}

/// out = 0 except out[idx_m] = wire[m] (the host's decode_values).
inline void decode_values(compress::randomk& codec, const codec_context& ctx, device_span<const float> wire,
                          device_span<float> out, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = detail::signs_threads;
  const std::size_t n = out.size();
  const std::size_t k = codec.wire_count(n);
  TERSE_EXPECTS(wire.size() == k, "randomk decode_values needs wire_count(n) values");
  if (n != 0) {
    TERSE_CUDA_TRY(cudaMemsetAsync(out.data(), 0, out.size_bytes(), stream));
  }
  const std::uint64_t* idx = detail::randomk_upload_indices(codec, ctx, n, stream, workspace);
  if (k != 0) {
    detail::randomk_scatter_kernel<threads, false>
        <<<detail::signs_blocks(k, threads), threads, 0, stream>>>(wire.data(), nullptr, idx, k, out.data());
    TERSE_CUDA_TRY(cudaGetLastError());
  }
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));  // the pinned slot is reused by the next call
}

/// Header and the k values into `out` (device memory): the host codec's
/// bytes. Throws errc::non_finite for NaN or Inf anywhere in `in`. Waits
/// for `stream`.
inline std::size_t encode(compress::randomk& codec, const codec_context& ctx, device_span<const float> in,
                          device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = detail::signs_threads;
  const std::size_t n = in.size();
  const std::size_t k = codec.wire_count(n);
  const std::size_t bytes = codec.max_encoded_bytes(n);
  TERSE_EXPECTS(out.size() >= bytes, "randomk needs max_encoded_bytes(n) bytes of output");
  detail::signs_header_kernel<threads><<<1, 1, 0, stream>>>(
      out.data(), detail::signs_make_header(
                      {.codec = compress::randomk::id, .param = codec.unbiased ? 1u : 0u, .count = n, .aux = k}));
  TERSE_CUDA_TRY(cudaGetLastError());
  detail::randomk_scan(in, stream, workspace);
  const std::uint64_t* idx = detail::randomk_upload_indices(codec, ctx, n, stream, workspace);
  if (k != 0) {
    detail::randomk_gather_kernel<threads><<<detail::signs_blocks(k, threads), threads, 0, stream>>>(
        in.data(), idx, k, codec.scale(n), detail::randomk_store_bytes{out.data() + wire::header_bytes});
    TERSE_CUDA_TRY(cudaGetLastError());
  }
  detail::signs_check_finite(workspace, stream, "randomk encode");
  return bytes;
}

/// Validates `payload` (device memory) completely, then acc[idx_m] +=
/// value m. Malformed: errc::malformed_payload and `acc` untouched. Waits
/// for `stream`.
inline void decode_add(compress::randomk& codec, const codec_context& ctx, device_span<const std::byte> payload,
                       device_span<float> acc, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = detail::signs_threads;
  const std::size_t n = acc.size();
  const std::size_t k = codec.wire_count(n);
  const wire::header h = detail::signs_read_header(payload, compress::randomk::id, n, stream, workspace);
  TERSE_CHECK(h.param == (codec.unbiased ? 1u : 0u) && h.aux == k, errc::malformed_payload,
              "randomk payload has another k or scaling flag than the receiver");
  detail::signs_expect_length(payload.size(), codec.max_encoded_bytes(n), compress::randomk::id);
  if (k == 0) {
    return;
  }
  const std::byte* body = payload.data() + wire::header_bytes;
  detail::randomk_validate_kernel<threads>
      <<<detail::signs_blocks(k, threads), threads, 0, stream>>>(body, k, workspace.status());
  TERSE_CUDA_TRY(cudaGetLastError());
  workspace.check_status(stream, "randomk decode");
  const std::uint64_t* idx = detail::randomk_upload_indices(codec, ctx, n, stream, workspace);
  detail::randomk_scatter_kernel<threads, true>
      <<<detail::signs_blocks(k, threads), threads, 0, stream>>>(nullptr, body, idx, k, acc.data());
  TERSE_CUDA_TRY(cudaGetLastError());
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));  // the pinned slot is reused by the next call
}

}  // namespace terse::cuda

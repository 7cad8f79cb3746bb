#pragma once
/// @file
/// Device `compress::sign`: the same payload bytes as the host codec.
///
/// Encode runs two kernels: 16 threads per bucket sum |v| in double along
/// the canonical 16 lanes and combine them with shuffles in the host's tree
/// (detail/sign_math.hpp), so the scale is bit-identical; then one thread
/// per value and a warp ballot pack 32 signs per store. Decode validates the
/// header on the host and the scales and padding in a kernel before its
/// decode kernel adds +-scale into `acc`. Encode and decode wait for their
/// stream once (to report non-finite input or a malformed payload).

#include <terse/compress/detail/sign_math.hpp>
#include <terse/compress/detail/signs_common.hpp>
#include <terse/compress/sign.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/cuda/detail/signs_device.cuh>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace terse::detail {

/// 16 threads per bucket: the canonical 16-lane double sum of |p| and the
/// scale. Residual: p = g + e_old, stored to e_new (the second kernel
/// finishes e_new).
template <int Threads, bool Residual>
__global__ void __launch_bounds__(Threads)
    sign_scale_kernel(const float* g, const float* e_old, float* e_new, std::uint64_t n, std::uint64_t bucket,
                      std::uint64_t buckets, std::byte* scales, std::uint32_t* status)
{
  const std::uint64_t b = (blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x) / sign_lanes;
  const unsigned lane = threadIdx.x % sign_lanes;
  double sum = 0.0;
  std::uint64_t count = 0;
  if (b < buckets) {
    const std::uint64_t start = b * bucket;
    count = n - start < bucket ? n - start : bucket;
    for (std::uint64_t i = lane; i < count; i += sign_lanes) {
      float p = g[start + i];
      if constexpr (Residual) {
        p = p + e_old[start + i];
        e_new[start + i] = p;
      }
      sum += static_cast<double>(fabsf(p));
    }
  }
  // sign_lane_total with shuffles inside each group of 16 lanes.
  sum += __shfl_down_sync(0xffffffffu, sum, 4, sign_lanes);
  sum += __shfl_down_sync(0xffffffffu, sum, 8, sign_lanes);
  sum += __shfl_down_sync(0xffffffffu, sum, 2, sign_lanes);
  sum += __shfl_down_sync(0xffffffffu, sum, 1, sign_lanes);
  if (b < buckets && lane == 0) {
    if (!sign_total_finite(sum)) {
      atomicOr(status, signs_status_non_finite);
    }
    signs_store_u32(scales + 4 * b, float_bits(sign_scale(sum, static_cast<std::size_t>(count))));
  }
}

/// One thread per value: a warp ballot gives 32 sign bits, stored as up to
/// four bytes. Residual: e_new = p - decode(p) (p already in e_new).
template <int Threads, bool Residual>
__global__ void __launch_bounds__(Threads)
    sign_bits_kernel(const float* g, float* e_new, std::uint64_t n, std::uint64_t bucket, const std::byte* scales,
                     std::byte* bits)
{
  const std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x;
  float p = 0.0f;
  if (i < n) {
    if constexpr (Residual) {
      p = e_new[i];
    } else {
      p = g[i];
    }
  }
  const bool negative = i < n && sign_negative(p);
  const unsigned mask = __ballot_sync(0xffffffffu, negative);
  if (i < n) {
    if constexpr (Residual) {
      const float scale = bits_float(signs_load_u32(scales + 4 * (i / bucket)));
      e_new[i] = p - sign_value(scale, negative);
    }
    if ((threadIdx.x % 32) == 0) {
      const std::uint64_t bytes = packed_bytes(n, 1);
      for (std::uint64_t q = 0; q < 4 && i / 8 + q < bytes; ++q) {
        bits[i / 8 + q] = static_cast<std::byte>(mask >> (8 * q));
      }
    }
  }
}

/// Scales must be non-negative and finite; the last byte's padding zero.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sign_validate_kernel(const std::byte* scales, std::uint64_t buckets, const std::byte* bits, std::uint64_t n,
                         std::uint32_t* status)
{
  const std::uint64_t b = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x;
  if (b < buckets && !valid_scale_bits(signs_load_u32(scales + 4 * b))) {
    atomicOr(status, signs_status_malformed);
  }
  if (b == 0 && n % 8 != 0 && (static_cast<unsigned>(bits[n / 8]) >> (n % 8)) != 0) {
    atomicOr(status, signs_status_malformed);
  }
}

template <int Threads>
__global__ void __launch_bounds__(Threads) sign_decode_kernel(const std::byte* scales, const std::byte* bits,
                                                              std::uint64_t n, std::uint64_t bucket, float* acc)
{
  const std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x;
  if (i < n) {
    const float scale = bits_float(signs_load_u32(scales + 4 * (i / bucket)));
    acc[i] += sign_value(scale, ((static_cast<unsigned>(bits[i / 8]) >> (i % 8)) & 1u) != 0);
  }
}

template <bool Residual>
std::size_t sign_encode_device(const compress::sign& codec, device_span<const float> g, device_span<const float> e_old,
                               device_span<float> e_new, device_span<std::byte> out, cudaStream_t stream,
                               device_workspace& workspace)
{
  constexpr int threads = signs_threads;
  const std::uint64_t n = g.size();
  const std::size_t bytes = codec.max_encoded_bytes(n);
  TERSE_EXPECTS(out.size() >= bytes, "sign needs max_encoded_bytes(n) bytes of output");
  const std::uint64_t buckets = bucket_count(n, codec.bucket);
  std::byte* scales = out.data() + wire::header_bytes;
  std::byte* bits = scales + 4 * buckets;
  signs_header_kernel<threads><<<1, 1, 0, stream>>>(
      out.data(),
      signs_make_header(
          {.codec = compress::sign::id, .param = compress::sign::wire_param, .count = n, .aux = codec.bucket}));
  TERSE_CUDA_TRY(cudaGetLastError());
  if (n != 0) {
    sign_scale_kernel<threads, Residual><<<signs_blocks(buckets * sign_lanes, threads), threads, 0, stream>>>(
        g.data(), e_old.data(), e_new.data(), n, codec.bucket, buckets, scales, workspace.status());
    TERSE_CUDA_TRY(cudaGetLastError());
    sign_bits_kernel<threads, Residual>
        <<<signs_blocks(n, threads), threads, 0, stream>>>(g.data(), e_new.data(), n, codec.bucket, scales, bits);
    TERSE_CUDA_TRY(cudaGetLastError());
  }
  signs_check_finite(workspace, stream, "sign encode");
  return bytes;
}

}  // namespace terse::detail

namespace terse::cuda {

/// Codes `in` (device memory) into `out` (device memory): the host codec's
/// bytes. Throws errc::non_finite for NaN or Inf input. Waits for `stream`.
inline std::size_t encode(const compress::sign& codec, const codec_context&, device_span<const float> in,
                          device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  return detail::sign_encode_device<false>(codec, in, {}, {}, out, stream, workspace);
}

/// Fused error feedback on the device: codes p = g + e_old and writes
/// e_new = p - decode(p) (bit-identical to the host's encode_residual).
inline std::size_t encode_residual(const compress::sign& codec, const codec_context&, device_span<const float> g,
                                   device_span<const float> e_old, device_span<float> e_new, device_span<std::byte> out,
                                   cudaStream_t stream, device_workspace& workspace)
{
  TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                "sign encode_residual needs g, e_old and e_new of one size");
  return detail::sign_encode_device<true>(codec, g, e_old, e_new, out, stream, workspace);
}

/// Validates `payload` (device memory) completely, then adds the decoded
/// values into `acc` (device memory). Malformed: errc::malformed_payload
/// and `acc` untouched. Waits for `stream`.
inline void decode_add(const compress::sign& codec, const codec_context&, device_span<const std::byte> payload,
                       device_span<float> acc, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = detail::signs_threads;
  const std::uint64_t n = acc.size();
  TERSE_EXPECTS(codec.bucket >= 1, "sign needs a bucket of at least one value");
  const wire::header h = detail::signs_read_header(payload, compress::sign::id, n, stream, workspace);
  TERSE_CHECK(h.param == compress::sign::wire_param && h.aux == codec.bucket, errc::malformed_payload,
              "sign payload has another parameter or bucket size than the receiver");
  detail::signs_expect_length(payload.size(), codec.max_encoded_bytes(n), compress::sign::id);
  const std::uint64_t buckets = detail::bucket_count(n, codec.bucket);
  const std::byte* scales = payload.data() + wire::header_bytes;
  const std::byte* bits = scales + 4 * buckets;
  if (n == 0) {
    return;
  }
  detail::sign_validate_kernel<threads>
      <<<detail::signs_blocks(buckets, threads), threads, 0, stream>>>(scales, buckets, bits, n, workspace.status());
  TERSE_CUDA_TRY(cudaGetLastError());
  workspace.check_status(stream, "sign decode");
  detail::sign_decode_kernel<threads>
      <<<detail::signs_blocks(n, threads), threads, 0, stream>>>(scales, bits, n, codec.bucket, acc.data());
  TERSE_CUDA_TRY(cudaGetLastError());
}

}  // namespace terse::cuda

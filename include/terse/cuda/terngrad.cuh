#pragma once
/// @file
/// Device `compress::terngrad`: the same payload bytes as the host codec.
///
/// Encode: one warp per bucket finds s = max|v| as an integer max of bit
/// patterns (order-free, so trivially the host's; non-finite input shows
/// up as a pattern >= +Inf), then one thread per output byte codes four
/// values with the shared draws (draw16 of ctx.private_stream() at
/// ctx.offset + i) and the shared rule (detail/terngrad_math.hpp). Decode
/// validates the header on the host, scales, codes and padding in a kernel,
/// then adds s * t into `acc`. Encode and decode wait for their stream once.

#include <terse/compress/detail/signs_common.hpp>
#include <terse/compress/detail/terngrad_math.hpp>
#include <terse/compress/terngrad.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/cuda/detail/signs_device.cuh>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace terse::detail {

/// One warp per bucket: s = max|p| (as bits). Residual: p = g + e_old,
/// stored to e_new.
template <int Threads, bool Residual>
__global__ void __launch_bounds__(Threads)
    terngrad_scale_kernel(const float* g, const float* e_old, float* e_new, std::uint64_t n, std::uint64_t bucket,
                          std::uint64_t buckets, std::byte* scales, std::uint32_t* status)
{
  const std::uint64_t b = (blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x) / 32;
  const unsigned lane = threadIdx.x % 32;
  if (b >= buckets) {
    return;  // whole warps only: buckets are per warp
  }
  const std::uint64_t start = b * bucket;
  const std::uint64_t count = n - start < bucket ? n - start : bucket;
  std::uint32_t top = 0;
  for (std::uint64_t i = lane; i < count; i += 32) {
    float p = g[start + i];
    if constexpr (Residual) {
      p = p + e_old[start + i];
      e_new[start + i] = p;
    }
    const std::uint32_t m = terngrad_magnitude_bits(p);
    top = m > top ? m : top;
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const std::uint32_t other = __shfl_xor_sync(0xffffffffu, top, offset);
    top = other > top ? other : top;
  }
  if (lane == 0) {
    if (!terngrad_finite_bits(top)) {
      atomicOr(status, signs_status_non_finite);
    }
    signs_store_u32(scales + 4 * b, top);
  }
}

/// One thread per output byte: codes of values 4t .. 4t+3. Residual:
/// e_new = p - decode(p) (p already in e_new).
template <int Threads, bool Residual>
__global__ void __launch_bounds__(Threads)
    terngrad_code_kernel(const float* g, float* e_new, std::uint64_t n, std::uint64_t bucket, const std::byte* scales,
                         random_stream stream, std::uint64_t offset, std::byte* codes)
{
  const std::uint64_t t = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x;
  if (t >= packed_bytes(n, 2)) {
    return;
  }
  unsigned byte = 0;
  for (unsigned q = 0; q < 4; ++q) {
    const std::uint64_t i = 4 * t + q;
    if (i >= n) {
      break;
    }
    const float scale = bits_float(signs_load_u32(scales + 4 * (i / bucket)));
    float p;
    if constexpr (Residual) {
      p = e_new[i];
    } else {
      p = g[i];
    }
    const unsigned code = scale == 0.0f ? terngrad_code_zero : terngrad_code(p, scale, draw16(stream, offset + i));
    byte |= code << (2 * q);
    if constexpr (Residual) {
      e_new[i] = p - terngrad_value(scale, code);
    }
  }
  codes[t] = static_cast<std::byte>(byte);
}

/// Scales non-negative and finite, no code 3, padding zero.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    terngrad_validate_kernel(const std::byte* scales, std::uint64_t buckets, const std::byte* codes, std::uint64_t n,
                             std::uint32_t* status)
{
  const std::uint64_t t = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x;
  bool bad = false;
  if (t < buckets) {
    bad = !valid_scale_bits(signs_load_u32(scales + 4 * t));
  }
  if (t < packed_bytes(n, 2)) {
    const auto byte = static_cast<unsigned>(codes[t]);
    bad = bad || (byte & (byte >> 1) & 0x55u) != 0;
  }
  if (t == 0 && n % 4 != 0) {
    bad = bad || (static_cast<unsigned>(codes[n / 4]) >> (2 * (n % 4))) != 0;
  }
  if (bad) {
    atomicOr(status, signs_status_malformed);
  }
}

template <int Threads>
__global__ void __launch_bounds__(Threads) terngrad_decode_kernel(const std::byte* scales, const std::byte* codes,
                                                                  std::uint64_t n, std::uint64_t bucket, float* acc)
{
  const std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x;
  if (i < n) {
    const float scale = bits_float(signs_load_u32(scales + 4 * (i / bucket)));
    acc[i] += terngrad_value(scale, (static_cast<unsigned>(codes[i / 4]) >> (2 * (i % 4))) & 3u);
  }
}

template <bool Residual>
std::size_t terngrad_encode_device(const compress::terngrad& codec, const codec_context& ctx,
                                   device_span<const float> g, device_span<const float> e_old, device_span<float> e_new,
                                   device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = signs_threads;
  const std::uint64_t n = g.size();
  const std::size_t bytes = codec.max_encoded_bytes(n);
  TERSE_EXPECTS(out.size() >= bytes, "terngrad needs max_encoded_bytes(n) bytes of output");
  const std::uint64_t buckets = bucket_count(n, codec.bucket);
  std::byte* scales = out.data() + wire::header_bytes;
  std::byte* codes = scales + 4 * buckets;
  signs_header_kernel<threads><<<1, 1, 0, stream>>>(
      out.data(),
      signs_make_header(
          {.codec = compress::terngrad::id, .param = compress::terngrad::wire_param, .count = n, .aux = codec.bucket}));
  TERSE_CUDA_TRY(cudaGetLastError());
  if (n != 0) {
    terngrad_scale_kernel<threads, Residual><<<signs_blocks(buckets * 32, threads), threads, 0, stream>>>(
        g.data(), e_old.data(), e_new.data(), n, codec.bucket, buckets, scales, workspace.status());
    TERSE_CUDA_TRY(cudaGetLastError());
    terngrad_code_kernel<threads, Residual><<<signs_blocks(packed_bytes(n, 2), threads), threads, 0, stream>>>(
        g.data(), e_new.data(), n, codec.bucket, scales, ctx.private_stream(), ctx.offset, codes);
    TERSE_CUDA_TRY(cudaGetLastError());
  }
  signs_check_finite(workspace, stream, "terngrad encode");
  return bytes;
}

}  // namespace terse::detail

namespace terse::cuda {

/// Codes `in` (device memory) into `out` (device memory): the host codec's
/// bytes for the same context. Throws errc::non_finite for NaN or Inf
/// input. Waits for `stream`.
inline std::size_t encode(const compress::terngrad& codec, const codec_context& ctx, device_span<const float> in,
                          device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  return detail::terngrad_encode_device<false>(codec, ctx, in, {}, {}, out, stream, workspace);
}

/// Fused error feedback on the device: codes p = g + e_old and writes
/// e_new = p - decode(p) (bit-identical to the host's encode_residual).
inline std::size_t encode_residual(const compress::terngrad& codec, const codec_context& ctx,
                                   device_span<const float> g, device_span<const float> e_old, device_span<float> e_new,
                                   device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                "terngrad encode_residual needs g, e_old and e_new of one size");
  return detail::terngrad_encode_device<true>(codec, ctx, g, e_old, e_new, out, stream, workspace);
}

/// Validates `payload` (device memory) completely, then adds s * t into
/// `acc` (device memory). Malformed: errc::malformed_payload and `acc`
/// untouched. Waits for `stream`.
inline void decode_add(const compress::terngrad& codec, const codec_context&, device_span<const std::byte> payload,
                       device_span<float> acc, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = detail::signs_threads;
  const std::uint64_t n = acc.size();
  TERSE_EXPECTS(codec.bucket >= 1, "terngrad needs a bucket of at least one value");
  const wire::header h = detail::signs_read_header(payload, compress::terngrad::id, n, stream, workspace);
  TERSE_CHECK(h.param == compress::terngrad::wire_param && h.aux == codec.bucket, errc::malformed_payload,
              "terngrad payload has another parameter or bucket size than the receiver");
  detail::signs_expect_length(payload.size(), codec.max_encoded_bytes(n), compress::terngrad::id);
  if (n == 0) {
    return;
  }
  const std::uint64_t buckets = detail::bucket_count(n, codec.bucket);
  const std::byte* scales = payload.data() + wire::header_bytes;
  const std::byte* codes = scales + 4 * buckets;
  const std::uint64_t work = buckets > detail::packed_bytes(n, 2) ? buckets : detail::packed_bytes(n, 2);
  detail::terngrad_validate_kernel<threads>
      <<<detail::signs_blocks(work, threads), threads, 0, stream>>>(scales, buckets, codes, n, workspace.status());
  TERSE_CUDA_TRY(cudaGetLastError());
  workspace.check_status(stream, "terngrad decode");
  detail::terngrad_decode_kernel<threads>
      <<<detail::signs_blocks(n, threads), threads, 0, stream>>>(scales, codes, n, codec.bucket, acc.data());
  TERSE_CUDA_TRY(cudaGetLastError());
}

}  // namespace terse::cuda

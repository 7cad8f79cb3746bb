#pragma once
/// @file
/// Device `compress::adaptive`: uniform<b> kernels at the schedule's width
/// for ctx.step, the host codec's bytes (see uniform.cuh).

#include <terse/compress/adaptive.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/cuda/detail/quantizer_device.cuh>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace terse::detail {

template <bool Residual>
std::size_t adaptive_encode_device(const compress::adaptive& codec, const codec_context& ctx,
                                   device_span<const float> g, const float* e_old, float* e_new,
                                   device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  const std::uint32_t bits = codec.bits_at(ctx.step);
  const std::size_t bytes = codec.bytes_for(g.size(), bits);
  TERSE_EXPECTS(out.size() >= bytes, "adaptive: the output holds " + std::to_string(out.size()) +
                                         " bytes; the payload needs " + std::to_string(bytes));
  const wire::header header{.codec = compress::adaptive::id, .param = bits, .count = g.size(), .aux = codec.bucket};
  switch (bits) {
    case 2:
      quantizer_encode_device<uniform_device_policy<2>, Residual>(g.data(), e_old, e_new, g.size(), codec.bucket, ctx,
                                                                  out.data(), header, stream, workspace,
                                                                  "adaptive encode");
      break;
    case 4:
      quantizer_encode_device<uniform_device_policy<4>, Residual>(g.data(), e_old, e_new, g.size(), codec.bucket, ctx,
                                                                  out.data(), header, stream, workspace,
                                                                  "adaptive encode");
      break;
    default:
      quantizer_encode_device<uniform_device_policy<8>, Residual>(g.data(), e_old, e_new, g.size(), codec.bucket, ctx,
                                                                  out.data(), header, stream, workspace,
                                                                  "adaptive encode");
  }
  return bytes;
}

}  // namespace terse::detail

namespace terse::cuda {

/// Quantizes `in` (device memory) at the schedule's width for ctx.step:
/// the host codec's bytes. Throws errc::non_finite for NaN or Inf input.
inline std::size_t encode(const compress::adaptive& codec, const codec_context& ctx, device_span<const float> in,
                          device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  return detail::adaptive_encode_device<false>(codec, ctx, in, nullptr, nullptr, out, stream, workspace);
}

/// Fused error feedback: codes p = g + e_old and writes e_new = p - decode(p).
inline std::size_t encode_residual(const compress::adaptive& codec, const codec_context& ctx,
                                   device_span<const float> g, device_span<const float> e_old, device_span<float> e_new,
                                   device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                "adaptive encode_residual: g, e_old and e_new must have the same length");
  return detail::adaptive_encode_device<true>(codec, ctx, g, e_old.data(), e_new.data(), out, stream, workspace);
}

/// Validates `payload` (device memory) completely, its width against the
/// schedule for ctx.step included, then adds its values into `acc`.
inline void decode_add(const compress::adaptive& codec, const codec_context& ctx, device_span<const std::byte> payload,
                       device_span<float> acc, cudaStream_t stream, device_workspace& workspace)
{
  const std::uint32_t expected_bits = codec.bits_at(ctx.step);
  const wire::header h = detail::quantizer_read_header(payload, compress::adaptive::id, acc.size(), stream, workspace);
  TERSE_CHECK(h.param == expected_bits && h.aux == codec.bucket, errc::malformed_payload,
              "adaptive payload has width " + std::to_string(h.param) + " and bucket " + std::to_string(h.aux) +
                  "; the receiver expects " + std::to_string(expected_bits) + " bits at step " +
                  std::to_string(ctx.step) + " and bucket " + std::to_string(codec.bucket));
  detail::quantizer_expect_length(payload.size(), codec.bytes_for(acc.size(), expected_bits), compress::adaptive::id);
  const std::byte* body = payload.data() + wire::header_bytes;
  switch (expected_bits) {
    case 2:
      detail::quantizer_decode_device<detail::uniform_device_policy<2>>(body, acc.size(), codec.bucket, acc.data(),
                                                                        stream, workspace, "adaptive decode");
      break;
    case 4:
      detail::quantizer_decode_device<detail::uniform_device_policy<4>>(body, acc.size(), codec.bucket, acc.data(),
                                                                        stream, workspace, "adaptive decode");
      break;
    default:
      detail::quantizer_decode_device<detail::uniform_device_policy<8>>(body, acc.size(), codec.bucket, acc.data(),
                                                                        stream, workspace, "adaptive decode");
  }
}

}  // namespace terse::cuda

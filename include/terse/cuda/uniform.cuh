#pragma once
/// @file
/// Device `compress::uniform<Bits>`: the host codec's bytes from device
/// memory (see detail/quantizer_device.cuh for the kernels). Encode and
/// decode wait for their stream once, to report non-finite input or a
/// malformed payload.

#include <terse/compress/uniform.hpp>
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

template <unsigned Bits, bool Residual>
std::size_t uniform_encode_device(const compress::uniform<Bits>& codec, const codec_context& ctx,
                                  device_span<const float> g, const float* e_old, float* e_new,
                                  device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  const std::size_t bytes = codec.max_encoded_bytes(g.size());
  TERSE_EXPECTS(out.size() >= bytes, "uniform: the output holds " + std::to_string(out.size()) +
                                         " bytes; the payload needs " + std::to_string(bytes));
  quantizer_encode_device<uniform_device_policy<Bits>, Residual>(
      g.data(), e_old, e_new, g.size(), codec.bucket, ctx, out.data(),
      {.codec = compress::uniform<Bits>::id, .param = Bits, .count = g.size(), .aux = codec.bucket}, stream, workspace,
      "uniform encode");
  return bytes;
}

}  // namespace terse::detail

namespace terse::cuda {

/// Quantizes `in` (device memory) into `out` (device memory): the bytes the
/// host codec writes. Throws errc::non_finite for NaN or Inf input.
template <unsigned Bits>
std::size_t encode(const compress::uniform<Bits>& codec, const codec_context& ctx, device_span<const float> in,
                   device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  return detail::uniform_encode_device<Bits, false>(codec, ctx, in, nullptr, nullptr, out, stream, workspace);
}

/// Fused error feedback: codes p = g + e_old and writes e_new = p - decode(p),
/// bit-identical to the host's encode_residual.
template <unsigned Bits>
std::size_t encode_residual(const compress::uniform<Bits>& codec, const codec_context& ctx, device_span<const float> g,
                            device_span<const float> e_old, device_span<float> e_new, device_span<std::byte> out,
                            cudaStream_t stream, device_workspace& workspace)
{
  TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                "uniform encode_residual: g, e_old and e_new must have the same length");
  return detail::uniform_encode_device<Bits, true>(codec, ctx, g, e_old.data(), e_new.data(), out, stream, workspace);
}

/// Validates `payload` (device memory) completely, then adds its values
/// into `acc` (device memory). Malformed: errc::malformed_payload, `acc`
/// untouched.
template <unsigned Bits>
void decode_add(const compress::uniform<Bits>& codec, const codec_context&, device_span<const std::byte> payload,
                device_span<float> acc, cudaStream_t stream, device_workspace& workspace)
{
  const std::size_t expected = codec.max_encoded_bytes(acc.size());  // checks the bucket too
  const wire::header h =
      detail::quantizer_read_header(payload, compress::uniform<Bits>::id, acc.size(), stream, workspace);
  TERSE_CHECK(h.param == Bits && h.aux == codec.bucket, errc::malformed_payload,
              "uniform payload has another bit width or bucket size than the receiver");
  detail::quantizer_expect_length(payload.size(), expected, compress::uniform<Bits>::id);
  detail::quantizer_decode_device<detail::uniform_device_policy<Bits>>(
      payload.data() + wire::header_bytes, acc.size(), codec.bucket, acc.data(), stream, workspace, "uniform decode");
}

}  // namespace terse::cuda

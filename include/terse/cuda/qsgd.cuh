#pragma once
/// @file
/// Device `compress::qsgd<Levels>`: the host codec's bytes from device
/// memory, the bucket norm summed in the host's canonical order by one warp
/// (see detail/quantizer_device.cuh). Encode and decode wait for their
/// stream once, to report non-finite input or a malformed payload.

#include <terse/compress/qsgd.hpp>
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

template <std::uint32_t Levels, bool Residual>
std::size_t qsgd_encode_device(const compress::qsgd<Levels>& codec, const codec_context& ctx,
                               device_span<const float> g, const float* e_old, float* e_new, device_span<std::byte> out,
                               cudaStream_t stream, device_workspace& workspace)
{
  const std::size_t bytes = codec.max_encoded_bytes(g.size());
  TERSE_EXPECTS(out.size() >= bytes, "qsgd: the output holds " + std::to_string(out.size()) +
                                         " bytes; the payload needs " + std::to_string(bytes));
  quantizer_encode_device<qsgd_device_policy<Levels>, Residual>(
      g.data(), e_old, e_new, g.size(), codec.bucket, ctx, out.data(),
      {.codec = compress::qsgd<Levels>::id, .param = Levels, .count = g.size(), .aux = codec.bucket}, stream, workspace,
      "qsgd encode");
  return bytes;
}

}  // namespace terse::detail

namespace terse::cuda {

/// Quantizes `in` (device memory) into `out` (device memory): the bytes the
/// host codec writes. Throws errc::non_finite for NaN or Inf input.
template <std::uint32_t Levels>
std::size_t encode(const compress::qsgd<Levels>& codec, const codec_context& ctx, device_span<const float> in,
                   device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  return detail::qsgd_encode_device<Levels, false>(codec, ctx, in, nullptr, nullptr, out, stream, workspace);
}

/// Fused error feedback: codes p = g + e_old and writes e_new = p - decode(p),
/// bit-identical to the host's encode_residual.
template <std::uint32_t Levels>
std::size_t encode_residual(const compress::qsgd<Levels>& codec, const codec_context& ctx, device_span<const float> g,
                            device_span<const float> e_old, device_span<float> e_new, device_span<std::byte> out,
                            cudaStream_t stream, device_workspace& workspace)
{
  TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                "qsgd encode_residual: g, e_old and e_new must have the same length");
  return detail::qsgd_encode_device<Levels, true>(codec, ctx, g, e_old.data(), e_new.data(), out, stream, workspace);
}

/// Validates `payload` (device memory) completely, then adds its values
/// into `acc` (device memory). Malformed: errc::malformed_payload, `acc`
/// untouched.
template <std::uint32_t Levels>
void decode_add(const compress::qsgd<Levels>& codec, const codec_context&, device_span<const std::byte> payload,
                device_span<float> acc, cudaStream_t stream, device_workspace& workspace)
{
  const std::size_t expected = codec.max_encoded_bytes(acc.size());
  const wire::header h =
      detail::quantizer_read_header(payload, compress::qsgd<Levels>::id, acc.size(), stream, workspace);
  TERSE_CHECK(h.param == Levels && h.aux == codec.bucket, errc::malformed_payload,
              "qsgd payload has other levels or another bucket size than the receiver");
  detail::quantizer_expect_length(payload.size(), expected, compress::qsgd<Levels>::id);
  detail::quantizer_decode_device<detail::qsgd_device_policy<Levels>>(
      payload.data() + wire::header_bytes, acc.size(), codec.bucket, acc.data(), stream, workspace, "qsgd decode");
}

}  // namespace terse::cuda

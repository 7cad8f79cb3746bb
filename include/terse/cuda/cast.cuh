#pragma once
/// @file
/// Device `compress::cast<Storage>`: the host codec's bytes from device
/// memory, with the same round-to-nearest-even conversion and overflow
/// policy (detail/cast_math.hpp). One thread converts eight values (two float4
/// loads, one 16-byte store where aligned). Decode checks every 16-bit
/// value for Inf or NaN in one kernel before a second one adds into `acc`.
/// The summable path (encode_values / decode_values) has device variants.

#include <terse/compress/cast.hpp>
#include <terse/compress/detail/cast_math.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/error.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/cuda/detail/quantizer_device.cuh>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace terse::detail {

inline constexpr int cast_threads = 256;

/// Eight values per thread: out (16-bit storage at any alignment) from p =
/// g (+ e_old), e_new = p - float(cast(p)); flags NaN or Inf, and under
/// overflow::raise a value beyond the storage range, as non-finite.
template <class Storage, bool Residual, compress::overflow Policy>
__global__ void __launch_bounds__(cast_threads)
    cast_encode_kernel(const float* g, const float* e_old, float* e_new, std::uint64_t n, std::byte* out,
                       std::uint32_t* status)
{
  const std::uint64_t i = (blockIdx.x * static_cast<std::uint64_t>(cast_threads) + threadIdx.x) * 8;
  if (i >= n) {
    return;
  }
  const auto count = static_cast<unsigned>(n - i < 8 ? n - i : 8);
  float p[8];
  quantizer_load_octet<Residual>(g + i, Residual ? e_old + i : nullptr, count, p);
  std::uint64_t low = 0;
  std::uint64_t high = 0;
  float residual[8];
  bool finite = true;
  for (unsigned k = 0; k < count; ++k) {
    if constexpr (Policy == compress::overflow::raise) {
      finite = finite && !cast_rule<Storage>::overflows(p[k]);
    } else {
      finite = finite && (float_bits(p[k]) & 0x7f800000u) != 0x7f800000u;
    }
    const std::uint16_t h = cast_encode_one<Storage, Policy>(p[k]);
    (k < 4 ? low : high) |= static_cast<std::uint64_t>(h) << (16 * (k % 4));
    if constexpr (Residual) {
      residual[k] = __fsub_rn(p[k], cast_rule<Storage>::decode(h));
    }
  }
  if (!finite) {
    atomicOr(status, quantizer_status_non_finite);
  }
  std::byte* at = out + 2 * i;
  if (count == 8 && (reinterpret_cast<std::uintptr_t>(at) & 15u) == 0) {
    *reinterpret_cast<ulonglong2*>(at) = make_ulonglong2(low, high);
  } else {
    quantizer_store_bytes(at, low, 2 * (count < 4 ? count : 4));
    if (count > 4) {
      quantizer_store_bytes(at + 8, high, 2 * (count - 4));
    }
  }
  if constexpr (Residual) {
    quantizer_store_octet(e_new + i, count, residual);
  }
}

/// Eight 16-bit values per thread from `in` (any alignment).
__device__ inline void cast_load_halves(const std::byte* in, unsigned count, std::uint16_t h[8])
{
  if (count == 8 && (reinterpret_cast<std::uintptr_t>(in) & 15u) == 0) {
    const ulonglong2 v = *reinterpret_cast<const ulonglong2*>(in);
    for (unsigned k = 0; k < 4; ++k) {
      h[k] = static_cast<std::uint16_t>(v.x >> (16 * k));
      h[k + 4] = static_cast<std::uint16_t>(v.y >> (16 * k));
    }
    return;
  }
  for (unsigned k = 0; k < 8; ++k) {
    h[k] =
        k < count
            ? static_cast<std::uint16_t>(static_cast<unsigned>(in[2 * k]) | static_cast<unsigned>(in[2 * k + 1]) << 8)
            : std::uint16_t{0};
  }
}

/// Flags a payload value that is NaN, or Inf unless `allow_infinity`.
template <class Storage>
__global__ void __launch_bounds__(cast_threads)
    cast_validate_kernel(const std::byte* in, std::uint64_t n, bool allow_infinity, std::uint32_t* status)
{
  const std::uint64_t i = (blockIdx.x * static_cast<std::uint64_t>(cast_threads) + threadIdx.x) * 8;
  if (i >= n) {
    return;
  }
  const auto count = static_cast<unsigned>(n - i < 8 ? n - i : 8);
  std::uint16_t h[8];
  cast_load_halves(in + 2 * i, count, h);
  bool bad = false;
  for (unsigned k = 0; k < count; ++k) {
    constexpr std::uint16_t mask = cast_rule<Storage>::exponent_mask;
    const bool infinite = (h[k] & 0x7fffu) == mask;
    bad = bad || ((h[k] & mask) == mask && !(allow_infinity && infinite));
  }
  if (bad) {
    atomicOr(status, quantizer_status_malformed);
  }
}

/// out (+)= float(value) for eight values per thread.
template <class Storage, bool Add>
__global__ void __launch_bounds__(cast_threads) cast_decode_kernel(const std::byte* in, std::uint64_t n, float* out)
{
  const std::uint64_t i = (blockIdx.x * static_cast<std::uint64_t>(cast_threads) + threadIdx.x) * 8;
  if (i >= n) {
    return;
  }
  const auto count = static_cast<unsigned>(n - i < 8 ? n - i : 8);
  std::uint16_t h[8];
  cast_load_halves(in + 2 * i, count, h);
  float v[8];
  if constexpr (Add) {
    quantizer_load_octet<false>(out + i, nullptr, count, v);
  }
  for (unsigned k = 0; k < 8; ++k) {
    const float x = cast_rule<Storage>::decode(h[k]);
    v[k] = Add ? __fadd_rn(v[k], x) : x;
  }
  quantizer_store_octet(out + i, count, v);
}

/// Enqueues the conversion of n values into 2n bytes at `values` under
/// `policy`; non-finite input (or, under raise, overflow) sets a bit in the
/// status word.
template <class Storage, bool Residual>
void cast_encode_enqueue(compress::overflow policy, const float* g, const float* e_old, float* e_new, std::uint64_t n,
                         std::byte* values, cudaStream_t stream, device_workspace& workspace)
{
  if (n == 0) {
    return;
  }
  const auto launch = [&](auto kernel) {
    kernel<<<quantizer_blocks(bucket_count(n, 8), cast_threads), cast_threads, 0, stream>>>(g, e_old, e_new, n, values,
                                                                                            workspace.status());
  };
  switch (policy) {
    case compress::overflow::infinity:
      launch(cast_encode_kernel<Storage, Residual, compress::overflow::infinity>);
      break;
    case compress::overflow::saturate:
      launch(cast_encode_kernel<Storage, Residual, compress::overflow::saturate>);
      break;
    case compress::overflow::raise: launch(cast_encode_kernel<Storage, Residual, compress::overflow::raise>); break;
  }
  TERSE_CUDA_TRY(cudaGetLastError());
}

template <class Storage, bool Residual>
void cast_encode_device(compress::overflow policy, const float* g, const float* e_old, float* e_new, std::uint64_t n,
                        std::byte* values, cudaStream_t stream, device_workspace& workspace, const char* what)
{
  cast_encode_enqueue<Storage, Residual>(policy, g, e_old, e_new, n, values, stream, workspace);
  quantizer_check_finite(workspace, stream, what);
}

/// Enqueues the Inf/NaN check of n payload values (status word).
template <class Storage>
void cast_validate_enqueue(const std::byte* values, std::uint64_t n, bool allow_infinity, cudaStream_t stream,
                           device_workspace& workspace)
{
  cast_validate_kernel<Storage><<<quantizer_blocks(bucket_count(n, 8), cast_threads), cast_threads, 0, stream>>>(
      values, n, allow_infinity, workspace.status());
  TERSE_CUDA_TRY(cudaGetLastError());
}

/// Enqueues out (+)= float(values) for n values.
template <class Storage, bool Add>
void cast_decode_enqueue(const std::byte* values, std::uint64_t n, float* out, cudaStream_t stream)
{
  cast_decode_kernel<Storage, Add>
      <<<quantizer_blocks(bucket_count(n, 8), cast_threads), cast_threads, 0, stream>>>(values, n, out);
  TERSE_CUDA_TRY(cudaGetLastError());
}

template <class Storage, bool Residual>
std::size_t cast_encode_payload(const compress::cast<Storage>& codec, device_span<const float> g, const float* e_old,
                                float* e_new, device_span<std::byte> out, cudaStream_t stream,
                                device_workspace& workspace)
{
  const std::size_t bytes = codec.max_encoded_bytes(g.size());
  TERSE_EXPECTS(out.size() >= bytes, "cast: the output holds " + std::to_string(out.size()) +
                                         " bytes; the payload needs " + std::to_string(bytes));
  quantizer_header_kernel<32><<<1, 32, 0, stream>>>(
      out.data(), quantizer_make_header({.codec = compress::cast<Storage>::id, .param = 0, .count = g.size()}));
  TERSE_CUDA_TRY(cudaGetLastError());
  cast_encode_device<Storage, Residual>(codec.on_overflow, g.data(), e_old, e_new, g.size(),
                                        out.data() + wire::header_bytes, stream, workspace, "cast encode");
  return bytes;
}

}  // namespace terse::detail

namespace terse::cuda {

/// Converts `in` (device memory) into `out` (device memory): the host
/// codec's bytes. Throws errc::non_finite for NaN or Inf input.
template <class Storage>
std::size_t encode(const compress::cast<Storage>& codec, const codec_context&, device_span<const float> in,
                   device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  return detail::cast_encode_payload<Storage, false>(codec, in, nullptr, nullptr, out, stream, workspace);
}

/// Fused error feedback: codes p = g + e_old and writes e_new = p - float(cast(p)).
template <class Storage>
std::size_t encode_residual(const compress::cast<Storage>& codec, const codec_context&, device_span<const float> g,
                            device_span<const float> e_old, device_span<float> e_new, device_span<std::byte> out,
                            cudaStream_t stream, device_workspace& workspace)
{
  TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                "cast encode_residual: g, e_old and e_new must have the same length");
  return detail::cast_encode_payload<Storage, true>(codec, g, e_old.data(), e_new.data(), out, stream, workspace);
}

/// The summable path: `in` converted to 16-bit wire values (same length).
template <class Storage>
void encode_values(const compress::cast<Storage>& codec, const codec_context&, device_span<const float> in,
                   device_span<Storage> wire, cudaStream_t stream, device_workspace& workspace)
{
  TERSE_EXPECTS(wire.size() == in.size(), "cast encode_values: one wire value per input value");
  detail::cast_encode_device<Storage, false>(codec.on_overflow, in.data(), nullptr, nullptr, in.size(),
                                             reinterpret_cast<std::byte*>(wire.data()), stream, workspace,
                                             "cast encode_values");
}

/// The summable path: out[i] = float(wire[i]) (overwrites out; values pass
/// through as they are). Stream-ordered: does not wait.
template <class Storage>
void decode_values(const compress::cast<Storage>&, const codec_context&, device_span<const Storage> wire,
                   device_span<float> out, cudaStream_t stream, device_workspace&)
{
  TERSE_EXPECTS(wire.size() == out.size(), "cast decode_values: one output value per wire value");
  if (!out.empty()) {
    detail::cast_decode_enqueue<Storage, false>(reinterpret_cast<const std::byte*>(wire.data()), out.size(), out.data(),
                                                stream);
  }
}

/// Validates `payload` (device memory) completely, then adds its values
/// into `acc`. Malformed (a wrong header or length, an Inf or NaN value):
/// errc::malformed_payload, `acc` untouched.
template <class Storage>
void decode_add(const compress::cast<Storage>& codec, const codec_context&, device_span<const std::byte> payload,
                device_span<float> acc, cudaStream_t stream, device_workspace& workspace)
{
  constexpr auto id = compress::cast<Storage>::id;
  const wire::header h = detail::quantizer_read_header(payload, id, acc.size(), stream, workspace);
  TERSE_CHECK(h.param == 0 && h.aux == 0, errc::malformed_payload,
              std::string(wire::to_string(id)) + " payload has nonzero parameter fields");
  detail::quantizer_expect_length(payload.size(), codec.max_encoded_bytes(acc.size()), id);
  if (acc.empty()) {
    return;
  }
  const std::byte* values = payload.data() + wire::header_bytes;
  detail::cast_validate_enqueue<Storage>(values, acc.size(), codec.passes_infinity(), stream, workspace);
  workspace.check_status(stream, "cast decode");
  detail::cast_decode_enqueue<Storage, true>(values, acc.size(), acc.data(), stream);
}

}  // namespace terse::cuda

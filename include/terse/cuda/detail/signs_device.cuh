#pragma once
/// @file
/// Device plumbing shared by the sign, terngrad and randomk kernels: the
/// payload header written by a kernel (so encode never waits for a host
/// copy), the header read back and validated on the host, alignment-free
/// 32-bit loads and stores in payloads, and the status word protocol.

#include <terse/compress/wire.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/error.hpp>
#include <terse/core/span.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace terse::detail {

/// Threads per block of every kernel of this family. The kernels are
/// templates on it, which also gives them the inline linkage a header needs.
inline constexpr int signs_threads = 256;

/// Bits the kernels OR into the device status word.
inline constexpr std::uint32_t signs_status_malformed = 1;   ///< a payload failed validation
inline constexpr std::uint32_t signs_status_non_finite = 2;  ///< the input holds NaN or Inf

/// The 24 header bytes, passed to a kernel by value.
struct signs_header_bytes {
  std::byte bytes[wire::header_bytes];
};

inline signs_header_bytes signs_make_header(const wire::header& h)
{
  signs_header_bytes out;
  wire::write_header(host_span<std::byte>(out.bytes, wire::header_bytes), h);
  return out;
}

/// Blocks for `work` items of `per_block` each (at least one).
inline unsigned signs_blocks(std::uint64_t work, std::uint64_t per_block)
{
  const std::uint64_t blocks = (work + per_block - 1) / per_block;
  TERSE_EXPECTS(blocks < (std::uint64_t{1} << 31), "buffer too large for one launch");
  return static_cast<unsigned>(blocks == 0 ? 1 : blocks);
}

__device__ inline std::uint32_t signs_load_u32(const std::byte* at)
{
  if ((reinterpret_cast<std::uintptr_t>(at) & 3u) == 0) {
    return *reinterpret_cast<const std::uint32_t*>(at);
  }
  return static_cast<std::uint32_t>(at[0]) | static_cast<std::uint32_t>(at[1]) << 8 |
         static_cast<std::uint32_t>(at[2]) << 16 | static_cast<std::uint32_t>(at[3]) << 24;
}

__device__ inline void signs_store_u32(std::byte* at, std::uint32_t value)
{
  if ((reinterpret_cast<std::uintptr_t>(at) & 3u) == 0) {
    *reinterpret_cast<std::uint32_t*>(at) = value;
    return;
  }
  for (int b = 0; b < 4; ++b) {
    at[b] = static_cast<std::byte>(value >> (8 * b));
  }
}

__device__ inline void signs_write_header(std::byte* out, const signs_header_bytes& header)
{
  for (std::size_t b = 0; b < wire::header_bytes; ++b) {
    out[b] = header.bytes[b];
  }
}

/// Writes the header of a payload (one thread).
template <int Threads>
__global__ void __launch_bounds__(Threads) signs_header_kernel(std::byte* out, signs_header_bytes header)
{
  if (threadIdx.x == 0) {
    signs_write_header(out, header);
  }
}

/// Copies the device payload's header to pinned memory and validates it on
/// the host (codec, count); returns it for the codec's own checks.
inline wire::header signs_read_header(device_span<const std::byte> payload, wire::codec_id codec, std::uint64_t count,
                                      cudaStream_t stream, device_workspace& workspace)
{
  const std::string name(wire::to_string(codec));
  TERSE_CHECK(payload.size() >= wire::header_bytes, errc::malformed_payload,
              name + " payload of " + std::to_string(payload.size()) + " bytes is shorter than its header");
  std::byte* host = workspace.pinned<std::byte>(wire::header_bytes);
  TERSE_CUDA_TRY(cudaMemcpyAsync(host, payload.data(), wire::header_bytes, cudaMemcpyDeviceToHost, stream));
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
  return wire::read_header(host_span<const std::byte>(host, wire::header_bytes), codec, count);
}

/// The payload must be exactly `expected` bytes long.
inline void signs_expect_length(std::size_t actual, std::uint64_t expected, wire::codec_id codec)
{
  TERSE_CHECK(actual == expected, errc::malformed_payload,
              std::string(wire::to_string(codec)) + " payload is " + std::to_string(actual) +
                  " bytes; its header implies " + std::to_string(expected));
}

/// Waits for `stream`; throws non_finite (naming `what`) when an encode
/// kernel flagged its input. Clears the word either way. The pinned slot is
/// free here: a call of this family is synchronous at its end.
inline void signs_check_finite(device_workspace& workspace, cudaStream_t stream, const char* what)
{
  auto* host = workspace.pinned<std::uint32_t>(1);
  TERSE_CUDA_TRY(cudaMemcpyAsync(host, workspace.status(), sizeof(std::uint32_t), cudaMemcpyDeviceToHost, stream));
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
  const std::uint32_t code = *host;
  if (code != 0) {
    workspace.clear_status(stream);
    TERSE_CHECK((code & signs_status_non_finite) == 0, errc::non_finite,
                std::string(what) + ": the input holds NaN or Inf");
    TERSE_FAIL(errc::internal, std::string(what) + ": unexpected device status " + std::to_string(code));
  }
}

}  // namespace terse::detail

#pragma once
/// @file
/// Device `compress::dgc`: the host codec's bytes and threshold updates.
/// The threshold is the bucket's kept one (reuse_threshold) or the host's
/// sample rule on the device (the same Philox positions from
/// ctx.private_stream(), sorted with cub::DeviceRadixSort); one counting
/// pass (which also finds NaN and Inf) decides: a count within
/// k ± floor(tolerance k) is selected in order with cub::DeviceSelect::If
/// (two reads in all), anything else becomes the exact top k (two more
/// reads). The codec's per-bucket thresholds are host state, so the
/// functions take the codec by non-const reference. Every call waits for
/// its stream.

#include <terse/compress/dgc.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/cuda/detail/sparse_device.cuh>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace terse::cuda {

/// Writes the dgc payload of `in` (device memory) to `out` (device memory,
/// at least max_encoded_bytes(n) bytes), updates the bucket's threshold and
/// returns the payload size 24 + 8c. Raises errc::non_finite for NaN or Inf.
inline std::size_t encode(compress::dgc& codec, const codec_context& ctx, device_span<const float> in,
                          device_span<std::byte> out, cudaStream_t stream, device_workspace& workspace)
{
  constexpr int threads = detail::sparse_threads;
  const std::size_t n = in.size();
  const std::size_t k = codec.pairs(n);
  const auto slack = static_cast<std::size_t>(detail::dgc_slack(k, codec.tolerance));
  detail::check_sparse_encode_args(n, out.size(), codec.max_encoded_bytes(n), "dgc");
  std::byte* body = out.data() + wire::header_bytes;
  std::uint64_t c = 0;
  if (k == n && n != 0) {
    c = n;
    detail::sparse_device_all(in.data(), n, body, stream, workspace, "dgc");
  } else if (k != 0) {
    auto* scratch = detail::sparse_scratch(workspace, stream);
    const auto kept = codec.thresholds.find(ctx.bucket);
    const std::uint32_t* threshold_from = nullptr;
    std::uint32_t threshold = 0;
    if (codec.reuse_threshold && kept) {
      threshold = std::clamp<std::uint32_t>(*kept, 1u, detail::non_finite_key);  // as the host
    } else {
      const std::uint64_t m = detail::dgc_sample_size(n, codec.sample_fraction);
      const std::uint64_t rank = detail::dgc_sample_rank(k, m, n);
      auto* keys = workspace.scratch<std::uint32_t>(detail::sparse_slot_work, 2 * m);
      detail::sparse_sample_kernel<threads>
          <<<detail::sparse_blocks(m, 1024), threads, 0, stream>>>(in.data(), n, ctx.private_stream(), m, keys);
      TERSE_CUDA_TRY(cudaGetLastError());
      detail::sparse_cub(workspace, [&](void* temp, std::size_t& bytes) {
        return cub::DeviceRadixSort::SortKeysDescending(temp, bytes, keys, keys + m, static_cast<std::int64_t>(m), 0,
                                                        32, stream);
      });
      detail::sparse_pick_threshold_kernel<threads><<<1, threads, 0, stream>>>(keys + m, rank, &scratch->threshold);
      TERSE_CUDA_TRY(cudaGetLastError());
      threshold_from = &scratch->threshold;
    }
    const detail::sparse_device_scratch counted =
        detail::sparse_device_count(in.data(), n, threshold_from, threshold, scratch, stream, workspace);
    if (counted.non_finite != 0) {
      detail::sparse_throw_non_finite("dgc");
    }
    if (threshold_from != nullptr) {
      threshold = counted.threshold;
    }
    std::uint32_t next = threshold;
    if (counted.count + slack >= k && counted.count <= k + slack) {
      c = counted.count;  // close enough: send what passed
      detail::sparse_device_at_least(in.data(), n, nullptr, threshold, c, body, scratch, stream, workspace);
    } else {
      c = k;  // refine: exactly the top k
      next = detail::sparse_device_top_k(in.data(), n, k, body, stream, workspace, "dgc");
    }
    codec.thresholds.set(ctx.bucket, std::max<std::uint32_t>(next, 1u));
  }
  detail::sparse_header_kernel<threads>
      <<<1, threads, 0, stream>>>(out.data(), detail::sparse_make_header(compress::dgc::id, codec.density, n, c));
  TERSE_CUDA_TRY(cudaGetLastError());
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
  return wire::header_bytes + static_cast<std::size_t>(detail::sparse_body_bytes(c));
}

/// Validates `payload` (device memory) as the host decoder does, then
/// acc += decode. Malformed: errc::malformed_payload, `acc` untouched.
inline void decode_add(const compress::dgc&, const codec_context&, device_span<const std::byte> payload,
                       device_span<float> acc, cudaStream_t stream, device_workspace& workspace)
{
  const std::uint64_t n = acc.size();
  detail::sparse_device_decode_add(
      payload, acc, compress::dgc::id,
      [n](std::uint32_t param, std::uint64_t count) { return compress::dgc::header_verdict(param, count, n); }, stream,
      workspace);
}

}  // namespace terse::cuda

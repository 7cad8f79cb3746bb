#pragma once
/// @file
/// Device kernels shared by uniform, qsgd and adaptive (family
/// `quantizers`): they write the host codecs' bytes, using the same
/// element-wise rules (detail/uniform_math.hpp, detail/qsgd_math.hpp) and
/// draws (detail/quantizer_draws.hpp).
///
/// Encode. One thread owns one *octet* (8 consecutive values, whose fields
/// are exactly `bits` whole bytes because octets start at multiples of 8),
/// so no two threads ever write the same byte. Draws of a chunk of
/// 8 * threads values are staged in shared memory: each Philox block is
/// computed once and serves eight values.
///  - fast path (bucket % 8 == 0): one block per bucket reads its values
///    once from memory: the block reduces the bucket's statistic (min/max,
///    or the canonical norm), then quantizes the bucket (second read from
///    L1/L2), writing scales and fields;
///  - general path (any bucket): a statistics kernel (one block per bucket)
///    writes the scales and each bucket's rule to scratch, then a tile
///    kernel quantizes octets looking the rule up per value.
/// Decode: a validation kernel checks every scale and the padding and
/// writes each bucket's rule to scratch; after the status check the decode
/// kernel adds one octet per thread.
///
/// A policy P describes the codec:
///     using rule = ...;                 detail::uniform_rule or detail::qsgd_rule
///     static constexpr unsigned bits;   field width
///     static constexpr unsigned scale_bytes;
///     __device__ static rule bucket_rule(values, count, status, shared)   (block-wide)
///     __device__ static void store_scales(const rule&, std::byte* at)
///     __device__ static bool load_rule(const std::byte* at, rule&)         (false: malformed)

#include <terse/compress/detail/packing.hpp>
#include <terse/compress/detail/qsgd_math.hpp>
#include <terse/compress/detail/quantizer_draws.hpp>
#include <terse/compress/detail/uniform_math.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/error.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <cuda_runtime_api.h>

#include <cfloat>
#include <cstddef>
#include <cstdint>
#include <string>

namespace terse::detail {

/// Threads per block of the quantizer kernels (two warps: a 512-value
/// bucket is one chunk of 64 octets).
inline constexpr int quantizer_threads = 64;
/// Values per chunk: one octet per thread.
inline constexpr int quantizer_chunk = 8 * quantizer_threads;

/// Bits the kernels OR into the device status word.
inline constexpr std::uint32_t quantizer_status_malformed = 1;
inline constexpr std::uint32_t quantizer_status_non_finite = 2;

// --- plumbing --------------------------------------------------------------------

/// The 24 header bytes, passed to a kernel by value.
struct quantizer_header {
  std::byte bytes[wire::header_bytes];
};

inline quantizer_header quantizer_make_header(const wire::header& h)
{
  quantizer_header out;
  wire::write_header(host_span<std::byte>(out.bytes, wire::header_bytes), h);
  return out;
}

inline unsigned quantizer_blocks(std::uint64_t work, std::uint64_t per_block)
{
  const std::uint64_t blocks = (work + per_block - 1) / per_block;
  TERSE_EXPECTS(blocks < (std::uint64_t{1} << 31), "buffer too large for one launch");
  return static_cast<unsigned>(blocks == 0 ? 1 : blocks);
}

__device__ inline std::uint32_t quantizer_load_u32(const std::byte* at)
{
  if ((reinterpret_cast<std::uintptr_t>(at) & 3u) == 0) {
    return *reinterpret_cast<const std::uint32_t*>(at);
  }
  return static_cast<std::uint32_t>(at[0]) | static_cast<std::uint32_t>(at[1]) << 8 |
         static_cast<std::uint32_t>(at[2]) << 16 | static_cast<std::uint32_t>(at[3]) << 24;
}

__device__ inline void quantizer_store_u32(std::byte* at, std::uint32_t value)
{
  if ((reinterpret_cast<std::uintptr_t>(at) & 3u) == 0) {
    *reinterpret_cast<std::uint32_t*>(at) = value;
    return;
  }
  for (int b = 0; b < 4; ++b) {
    at[b] = static_cast<std::byte>(value >> (8 * b));
  }
}

/// Writes the low `count` bytes of `value` at `at`, in as few stores as the
/// alignment allows.
__device__ inline void quantizer_store_bytes(std::byte* at, std::uint64_t value, unsigned count)
{
  const auto address = reinterpret_cast<std::uintptr_t>(at);
  if (count == 8 && (address & 7u) == 0) {
    *reinterpret_cast<std::uint64_t*>(at) = value;
  } else if (count == 4 && (address & 3u) == 0) {
    *reinterpret_cast<std::uint32_t*>(at) = static_cast<std::uint32_t>(value);
  } else if (count == 2 && (address & 1u) == 0) {
    *reinterpret_cast<std::uint16_t*>(at) = static_cast<std::uint16_t>(value);
  } else {
    for (unsigned b = 0; b < count; ++b) {
      at[b] = static_cast<std::byte>(value >> (8 * b));
    }
  }
}

__device__ inline std::uint64_t quantizer_load_bytes(const std::byte* at, unsigned count)
{
  const auto address = reinterpret_cast<std::uintptr_t>(at);
  if (count == 8 && (address & 7u) == 0) {
    return *reinterpret_cast<const std::uint64_t*>(at);
  }
  if (count == 4 && (address & 3u) == 0) {
    return *reinterpret_cast<const std::uint32_t*>(at);
  }
  std::uint64_t value = 0;
  for (unsigned b = 0; b < count; ++b) {
    value |= static_cast<std::uint64_t>(at[b]) << (8 * b);
  }
  return value;
}

/// Up to eight consecutive values (p = g, or g + e_old), vectorised when
/// the whole octet is there and aligned.
template <bool Residual>
__device__ inline void quantizer_load_octet(const float* g, const float* e_old, unsigned count, float p[8])
{
  const bool vector = count == 8 && (reinterpret_cast<std::uintptr_t>(g) & 15u) == 0 &&
                      (!Residual || (reinterpret_cast<std::uintptr_t>(e_old) & 15u) == 0);
  if (vector) {
    const float4 a = reinterpret_cast<const float4*>(g)[0];
    const float4 b = reinterpret_cast<const float4*>(g)[1];
    p[0] = a.x, p[1] = a.y, p[2] = a.z, p[3] = a.w, p[4] = b.x, p[5] = b.y, p[6] = b.z, p[7] = b.w;
    if constexpr (Residual) {
      const float4 c = reinterpret_cast<const float4*>(e_old)[0];
      const float4 d = reinterpret_cast<const float4*>(e_old)[1];
      p[0] = __fadd_rn(p[0], c.x), p[1] = __fadd_rn(p[1], c.y), p[2] = __fadd_rn(p[2], c.z);
      p[3] = __fadd_rn(p[3], c.w), p[4] = __fadd_rn(p[4], d.x), p[5] = __fadd_rn(p[5], d.y);
      p[6] = __fadd_rn(p[6], d.z), p[7] = __fadd_rn(p[7], d.w);
    }
    return;
  }
  for (unsigned k = 0; k < 8; ++k) {
    p[k] = 0.0f;
    if (k < count) {
      p[k] = Residual ? __fadd_rn(g[k], e_old[k]) : g[k];
    }
  }
}

/// Stores up to eight consecutive floats, vectorised when possible.
__device__ inline void quantizer_store_octet(float* out, unsigned count, const float v[8])
{
  if (count == 8 && (reinterpret_cast<std::uintptr_t>(out) & 15u) == 0) {
    reinterpret_cast<float4*>(out)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(out)[1] = make_float4(v[4], v[5], v[6], v[7]);
    return;
  }
  for (unsigned k = 0; k < count; ++k) {
    out[k] = v[k];
  }
}

/// One value of the bucket-wide passes (p = g or g + e_old).
template <bool Residual>
__device__ inline float quantizer_value(const float* g, const float* e_old, std::uint64_t i)
{
  if constexpr (Residual) {
    return __fadd_rn(g[i], e_old[i]);
  } else {
    return g[i];
  }
}

// --- draws -----------------------------------------------------------------------

/// draws[e] = the 16-bit draw of element j_first + e, for e < count
/// (count <= quantizer_chunk): each Philox block covering the range is
/// computed by one thread. Block-wide; the caller synchronises after.
template <int Threads>
__device__ inline void quantizer_stage_draws(const random_stream& stream, std::uint64_t j_first, unsigned count,
                                             std::uint16_t* draws)
{
  const std::uint64_t group_first = j_first / draws_per_group;
  const std::uint64_t group_last = (j_first + count - 1) / draws_per_group;
  const auto blocks = static_cast<unsigned>((group_last - group_first + 1) * 8);
  for (unsigned q = threadIdx.x; q < blocks; q += Threads) {
    const philox_counter c = stream.block(group_first * 8 + q);
    const std::uint64_t first_of_lane = (group_first + q / 8) * draws_per_group + q % 8;
    for (unsigned w = 0; w < 4; ++w) {
      for (unsigned half = 0; half < 2; ++half) {
        const std::uint64_t j = first_of_lane + 8 * (2 * w + half);
        if (j >= j_first && j < j_first + count) {
          draws[j - j_first] = static_cast<std::uint16_t>(half == 0 ? c.word[w] & 0xffffu : c.word[w] >> 16);
        }
      }
    }
  }
}

// --- quantize --------------------------------------------------------------------

/// Room for one rule in shared memory (a __shared__ variable cannot have
/// the rules' default member initializers).
template <class Rule>
struct quantizer_rule_slot {
  alignas(Rule) unsigned char bytes[sizeof(Rule)];
  __device__ Rule& get() { return *reinterpret_cast<Rule*>(bytes); }
};

/// One thread's octet: values [i, i + count) of the input (i % 8 == 0),
/// draws from `draws`, the rule of each value from rule_of(k) (k < count).
template <class P, bool Residual, class RuleOf>
__device__ inline void quantizer_octet(const float* g, const float* e_old, float* e_new, std::uint64_t i,
                                       unsigned count, const std::uint16_t* draws, RuleOf rule_of, std::uint8_t* fields)
{
  float p[8];
  quantizer_load_octet<Residual>(g + i, Residual ? e_old + i : nullptr, count, p);
  std::uint64_t packed = 0;
  float residual[8];
  for (unsigned k = 0; k < count; ++k) {
    const auto& rule = rule_of(k);
    const std::uint32_t field = rule.code(p[k], dither(draws[k]));
    packed |= static_cast<std::uint64_t>(field) << (k * P::bits);
    if constexpr (Residual) {
      residual[k] = __fsub_rn(p[k], rule.value(field));
    }
  }
  quantizer_store_bytes(reinterpret_cast<std::byte*>(fields) + i / 8 * P::bits, packed,
                        static_cast<unsigned>(packed_bytes(count, P::bits)));
  if constexpr (Residual) {
    quantizer_store_octet(e_new + i, count, residual);
  }
}

/// Every value of an octet has the same rule.
template <class Rule>
struct quantizer_one_rule {
  const Rule* rule;
  __device__ const Rule& operator()(unsigned) const { return *rule; }
};

/// Fast path: block b codes bucket b (bucket % 8 == 0).
template <class P, bool Residual>
__global__ void __launch_bounds__(quantizer_threads)
    quantizer_bucket_kernel(const float* g, const float* e_old, float* e_new, std::uint64_t n, std::uint64_t bucket,
                            random_stream stream, std::uint64_t offset, std::byte* scales, std::uint8_t* fields,
                            std::uint32_t* status)
{
  __shared__ std::uint16_t draws[quantizer_chunk];
  __shared__ quantizer_rule_slot<typename P::rule> shared_rule;
  const std::uint64_t first = blockIdx.x * bucket;
  const std::uint64_t count = n - first < bucket ? n - first : bucket;
  const typename P::rule rule = P::template bucket_rule<Residual, quantizer_threads>(
      g + first, Residual ? e_old + first : nullptr, count, status, shared_rule);
  if (threadIdx.x == 0) {
    P::store_scales(rule, scales + P::scale_bytes * blockIdx.x);
  }
  for (std::uint64_t chunk = 0; chunk < count; chunk += quantizer_chunk) {
    const auto in_chunk = static_cast<unsigned>(count - chunk < quantizer_chunk ? count - chunk : quantizer_chunk);
    __syncthreads();  // the previous chunk's draws are used up
    quantizer_stage_draws<quantizer_threads>(stream, offset + first + chunk, in_chunk, draws);
    __syncthreads();
    const unsigned at = 8 * threadIdx.x;
    if (at < in_chunk) {
      const unsigned octet = in_chunk - at < 8 ? in_chunk - at : 8;
      quantizer_octet<P, Residual>(g, e_old, e_new, first + chunk + at, octet, draws + at,
                                   quantizer_one_rule<typename P::rule>{&rule}, fields);
    }
  }
}

/// General path, step 1: block b reduces bucket b, writes its scales and
/// its rule.
template <class P, bool Residual>
__global__ void __launch_bounds__(quantizer_threads)
    quantizer_stats_kernel(const float* g, const float* e_old, std::uint64_t n, std::uint64_t bucket, std::byte* scales,
                           typename P::rule* rules, std::uint32_t* status)
{
  __shared__ quantizer_rule_slot<typename P::rule> shared_rule;
  const std::uint64_t first = blockIdx.x * bucket;
  const std::uint64_t count = n - first < bucket ? n - first : bucket;
  const typename P::rule rule = P::template bucket_rule<Residual, quantizer_threads>(
      g + first, Residual ? e_old + first : nullptr, count, status, shared_rule);
  if (threadIdx.x == 0) {
    P::store_scales(rule, scales + P::scale_bytes * blockIdx.x);
    rules[blockIdx.x] = rule;
  }
}

/// The rule of each value of an octet from the per-bucket rules: one
/// division per octet, and small ones only past a bucket boundary.
template <class Rule>
struct quantizer_rule_walk {
  const Rule* rules;
  std::uint64_t first_bucket;
  std::uint32_t bucket;
  unsigned boundary;  ///< values of the octet before the next bucket starts

  __device__ quantizer_rule_walk(const Rule* r, std::uint64_t i, std::uint32_t b)
      : rules(r), first_bucket(i / b), bucket(b)
  {
    const std::uint64_t left = (first_bucket + 1) * b - i;
    boundary = static_cast<unsigned>(left < 8 ? left : 8);
  }

  /// The rule of value k of the octet.
  __device__ const Rule& operator()(unsigned k) const
  {
    return rules[first_bucket + (k < boundary ? 0u : 1u + (k - boundary) / bucket)];
  }
};

/// General path, step 2: one octet per thread over the whole input.
template <class P, bool Residual>
__global__ void __launch_bounds__(quantizer_threads)
    quantizer_tile_kernel(const float* g, const float* e_old, float* e_new, std::uint64_t n, std::uint32_t bucket,
                          random_stream stream, std::uint64_t offset, const typename P::rule* rules,
                          std::uint8_t* fields)
{
  __shared__ std::uint16_t draws[quantizer_chunk];
  const std::uint64_t chunk = static_cast<std::uint64_t>(blockIdx.x) * quantizer_chunk;
  const auto in_chunk = static_cast<unsigned>(n - chunk < quantizer_chunk ? n - chunk : quantizer_chunk);
  quantizer_stage_draws<quantizer_threads>(stream, offset + chunk, in_chunk, draws);
  __syncthreads();
  const unsigned at = 8 * threadIdx.x;
  if (at < in_chunk) {
    const unsigned octet = in_chunk - at < 8 ? in_chunk - at : 8;
    const quantizer_rule_walk<typename P::rule> walk(rules, chunk + at, bucket);
    quantizer_octet<P, Residual>(g, e_old, e_new, chunk + at, octet, draws + at, walk, fields);
  }
}

// --- decode ----------------------------------------------------------------------

/// Thread per bucket: its scales valid, its rule to scratch; thread 0 also
/// checks the padding bits of the last byte.
template <class P>
__global__ void __launch_bounds__(256)
    quantizer_validate_kernel(const std::byte* scales, std::uint64_t buckets, const std::uint8_t* fields,
                              std::uint64_t n, typename P::rule* rules, std::uint32_t* status)
{
  const std::uint64_t b = blockIdx.x * 256ull + threadIdx.x;
  if (b < buckets) {
    typename P::rule rule;
    if (!P::load_rule(scales + P::scale_bytes * b, rule)) {
      atomicOr(status, quantizer_status_malformed);
    }
    rules[b] = rule;
  }
  const std::uint64_t used = n * P::bits;
  if (b == 0 && used % 8 != 0 && (static_cast<unsigned>(fields[used / 8]) >> (used % 8)) != 0) {
    atomicOr(status, quantizer_status_malformed);
  }
}

/// Thread per octet: acc += decoded values.
template <class P>
__global__ void __launch_bounds__(256)
    quantizer_decode_kernel(const std::uint8_t* fields, std::uint64_t n, std::uint32_t bucket,
                            const typename P::rule* rules, float* acc)
{
  const std::uint64_t i = (blockIdx.x * 256ull + threadIdx.x) * 8;
  if (i >= n) {
    return;
  }
  const auto count = static_cast<unsigned>(n - i < 8 ? n - i : 8);
  const std::uint64_t packed = quantizer_load_bytes(reinterpret_cast<const std::byte*>(fields) + i / 8 * P::bits,
                                                    static_cast<unsigned>(packed_bytes(count, P::bits)));
  const quantizer_rule_walk<typename P::rule> walk(rules, i, bucket);
  float sum[8];
  quantizer_load_octet<false>(acc + i, nullptr, count, sum);
  constexpr std::uint64_t mask = (std::uint64_t{1} << P::bits) - 1;
  for (unsigned k = 0; k < count; ++k) {
    sum[k] = __fadd_rn(sum[k], walk(k).value(static_cast<std::uint32_t>((packed >> (k * P::bits)) & mask)));
  }
  quantizer_store_octet(acc + i, count, sum);
}

// --- policies --------------------------------------------------------------------

/// Block-wide reductions over quantizer_threads threads.
template <int Threads>
struct quantizer_block {
  static_assert(Threads % 32 == 0 && Threads <= 1024);
  static constexpr int warps = Threads / 32;

  template <class T, class Op>
  __device__ static T all_reduce(T value, Op op)
  {
    __shared__ T partial[warps];
    for (int width = 16; width >= 1; width /= 2) {
      value = op(value, __shfl_xor_sync(0xffffffffu, value, width));
    }
    __syncthreads();  // partial may still be read from a previous call
    if (threadIdx.x % 32 == 0) {
      partial[threadIdx.x / 32] = value;
    }
    __syncthreads();
    value = partial[0];
    for (int w = 1; w < warps; ++w) {
      value = op(value, partial[w]);
    }
    return value;
  }
};

/// uniform<Bits>: scales (min, max), min/max reduction.
template <unsigned Bits>
struct uniform_device_policy {
  using rule = uniform_rule;
  static constexpr unsigned bits = Bits;
  static constexpr unsigned scale_bytes = 8;

  template <bool Residual, int Threads>
  __device__ static rule bucket_rule(const float* g, const float* e_old, std::uint64_t count, std::uint32_t* status,
                                     quantizer_rule_slot<rule>& shared)
  {
    float lo = __int_as_float(0x7f800000);
    float hi = -lo;
    bool finite = true;
    for (std::uint64_t i = threadIdx.x; i < count; i += Threads) {
      const float p = quantizer_value<Residual>(g, e_old, i);
      finite = finite && isfinite(p);
      lo = fminf(lo, p);
      hi = fmaxf(hi, p);
    }
    using block = quantizer_block<Threads>;
    lo = block::all_reduce(lo, [](float a, float b) { return fminf(a, b); });
    hi = block::all_reduce(hi, [](float a, float b) { return fmaxf(a, b); });
    finite = block::all_reduce(finite ? 1 : 0, [](int a, int b) { return a & b; }) != 0;
    if (threadIdx.x == 0) {
      if (!finite) {
        atomicOr(status, quantizer_status_non_finite);
      }
      shared.get() = uniform_rule::make(canonical_zero(lo), canonical_zero(hi), (1u << Bits) - 1);
    }
    __syncthreads();
    return shared.get();
  }

  __device__ static void store_scales(const rule& r, std::byte* at)
  {
    quantizer_store_u32(at, float_bits(r.lo));
    quantizer_store_u32(at + 4, float_bits(r.hi));
  }

  __device__ static bool load_rule(const std::byte* at, rule& r)
  {
    const float lo = bits_float(quantizer_load_u32(at));
    const float hi = bits_float(quantizer_load_u32(at + 4));
    const bool valid = isfinite(lo) && isfinite(hi) && lo <= hi;
    r = uniform_rule::make(valid ? lo : 0.0f, valid ? hi : 0.0f, (1u << Bits) - 1);
    return valid;
  }
};

/// qsgd<Levels>: scale (norm), the canonical norm (qsgd_math.hpp).
template <std::uint32_t Levels>
struct qsgd_device_policy {
  using rule = qsgd_rule;
  static constexpr unsigned bits = qsgd_field_bits(Levels);
  static constexpr unsigned scale_bytes = 4;

  template <bool Residual, int Threads>
  __device__ static rule bucket_rule(const float* g, const float* e_old, std::uint64_t count, std::uint32_t* status,
                                     quantizer_rule_slot<rule>& shared)
  {
    std::uint32_t max_bits = 0;
    for (std::uint64_t i = threadIdx.x; i < count; i += Threads) {
      const std::uint32_t b = float_bits(quantizer_value<Residual>(g, e_old, i)) & 0x7fffffffu;
      max_bits = b > max_bits ? b : max_bits;
    }
    max_bits =
        quantizer_block<Threads>::all_reduce(max_bits, [](std::uint32_t a, std::uint32_t b) { return a > b ? a : b; });
    if (threadIdx.x < 32) {  // one warp: the canonical 32-lane sum and the tree
      float norm = 0.0f;
      if (max_bits != 0 && max_bits < 0x7f800000u) {
        const int k = norm_exponent(max_bits);
        const float factor = pow2f(k);
        float lane = 0.0f;
        for (std::uint64_t i = threadIdx.x; i < count; i += 32) {
          const float x = __fmul_rn(quantizer_value<Residual>(g, e_old, i), factor);
          lane = __fmaf_rn(x, x, lane);
        }
        for (int width = norm_lanes / 2; width >= 1; width /= 2) {
          lane = __fadd_rn(lane, __shfl_down_sync(0xffffffffu, lane, width));
        }
        norm = norm_from_sum(lane, k);
      }
      if (threadIdx.x == 0) {
        if (max_bits >= 0x7f800000u) {
          atomicOr(status, quantizer_status_non_finite);
        }
        shared.get() = qsgd_rule::make(norm, Levels);
      }
    }
    __syncthreads();
    return shared.get();
  }

  __device__ static void store_scales(const rule& r, std::byte* at) { quantizer_store_u32(at, float_bits(r.norm)); }

  __device__ static bool load_rule(const std::byte* at, rule& r)
  {
    const std::uint32_t b = quantizer_load_u32(at);
    const bool valid = b < 0x7f800000u;  // finite and no sign bit
    r = qsgd_rule::make(valid ? bits_float(b) : 0.0f, Levels);
    return valid;
  }
};

// --- drivers ---------------------------------------------------------------------

/// Waits for `stream`, reads and clears the status word.
inline std::uint32_t quantizer_take_status(device_workspace& workspace, cudaStream_t stream)
{
  auto* host = workspace.pinned<std::uint32_t>(1);
  TERSE_CUDA_TRY(cudaMemcpyAsync(host, workspace.status(), sizeof(std::uint32_t), cudaMemcpyDeviceToHost, stream));
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
  const std::uint32_t code = *host;
  if (code != 0) {
    workspace.clear_status(stream);
  }
  return code;
}

template <int Threads>
__global__ void __launch_bounds__(Threads) quantizer_header_kernel(std::byte* out, quantizer_header header)
{
  if (threadIdx.x < wire::header_bytes) {
    out[threadIdx.x] = header.bytes[threadIdx.x];
  }
}

/// Enqueues the encode of n values (g, or g + e_old with e_new): `header`
/// at `out`, then the body. Non-finite input sets a bit in the status word.
template <class P, bool Residual>
void quantizer_encode_enqueue(const float* g, const float* e_old, float* e_new, std::uint64_t n, std::uint32_t bucket,
                              const codec_context& ctx, std::byte* out, const wire::header& header, cudaStream_t stream,
                              device_workspace& workspace)
{
  quantizer_header_kernel<32><<<1, 32, 0, stream>>>(out, quantizer_make_header(header));
  TERSE_CUDA_TRY(cudaGetLastError());
  if (n == 0) {
    return;
  }
  const std::uint64_t buckets = bucket_count(n, bucket);
  std::byte* scales = out + wire::header_bytes;
  auto* fields = reinterpret_cast<std::uint8_t*>(scales + P::scale_bytes * buckets);
  TERSE_EXPECTS(buckets < (std::uint64_t{1} << 31), "too many buckets for one launch");
  if (bucket % 8 == 0) {
    quantizer_bucket_kernel<P, Residual><<<static_cast<unsigned>(buckets), quantizer_threads, 0, stream>>>(
        g, e_old, e_new, n, bucket, ctx.private_stream(), ctx.offset, scales, fields, workspace.status());
    TERSE_CUDA_TRY(cudaGetLastError());
  } else {
    auto* rules = workspace.scratch<typename P::rule>(0, buckets);
    quantizer_stats_kernel<P, Residual><<<static_cast<unsigned>(buckets), quantizer_threads, 0, stream>>>(
        g, e_old, n, bucket, scales, rules, workspace.status());
    TERSE_CUDA_TRY(cudaGetLastError());
    quantizer_tile_kernel<P, Residual><<<quantizer_blocks(n, quantizer_chunk), quantizer_threads, 0, stream>>>(
        g, e_old, e_new, n, bucket, ctx.private_stream(), ctx.offset, rules, fields);
    TERSE_CUDA_TRY(cudaGetLastError());
  }
}

/// Waits for `stream`; throws errc::non_finite when an encode kernel
/// flagged its input (the status word is cleared either way).
inline void quantizer_check_finite(device_workspace& workspace, cudaStream_t stream, const char* what)
{
  const std::uint32_t code = quantizer_take_status(workspace, stream);
  TERSE_CHECK((code & quantizer_status_non_finite) == 0, errc::non_finite,
              std::string(what) + ": the input holds NaN or Inf");
  TERSE_CHECK(code == 0, errc::internal, std::string(what) + ": unexpected device status " + std::to_string(code));
}

/// quantizer_encode_enqueue, then the finiteness check (waits for `stream`).
template <class P, bool Residual>
void quantizer_encode_device(const float* g, const float* e_old, float* e_new, std::uint64_t n, std::uint32_t bucket,
                             const codec_context& ctx, std::byte* out, const wire::header& header, cudaStream_t stream,
                             device_workspace& workspace, const char* what)
{
  quantizer_encode_enqueue<P, Residual>(g, e_old, e_new, n, bucket, ctx, out, header, stream, workspace);
  quantizer_check_finite(workspace, stream, what);
}

/// Copies the payload's header to pinned memory and validates it on the
/// host (codec, count).
inline wire::header quantizer_read_header(device_span<const std::byte> payload, wire::codec_id codec,
                                          std::uint64_t count, cudaStream_t stream, device_workspace& workspace)
{
  TERSE_CHECK(payload.size() >= wire::header_bytes, errc::malformed_payload,
              std::string(wire::to_string(codec)) + " payload of " + std::to_string(payload.size()) +
                  " bytes is shorter than its header");
  std::byte* host = workspace.pinned<std::byte>(wire::header_bytes);
  TERSE_CUDA_TRY(cudaMemcpyAsync(host, payload.data(), wire::header_bytes, cudaMemcpyDeviceToHost, stream));
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
  return wire::read_header(host_span<const std::byte>(host, wire::header_bytes), codec, count);
}

inline void quantizer_expect_length(std::size_t actual, std::uint64_t expected, wire::codec_id codec)
{
  TERSE_CHECK(actual == expected, errc::malformed_payload,
              std::string(wire::to_string(codec)) + " payload is " + std::to_string(actual) +
                  " bytes; its header implies " + std::to_string(expected));
}

/// Enqueues the validation of a body (header already checked, length
/// exact): bad scales or padding set a bit in the status word; each
/// bucket's rule goes to scratch slot 0.
template <class P>
void quantizer_validate_enqueue(const std::byte* body, std::uint64_t n, std::uint32_t bucket, cudaStream_t stream,
                                device_workspace& workspace)
{
  const std::uint64_t buckets = bucket_count(n, bucket);
  const auto* fields = reinterpret_cast<const std::uint8_t*>(body + P::scale_bytes * buckets);
  auto* rules = workspace.scratch<typename P::rule>(0, buckets);
  quantizer_validate_kernel<P>
      <<<quantizer_blocks(buckets, 256), 256, 0, stream>>>(body, buckets, fields, n, rules, workspace.status());
  TERSE_CUDA_TRY(cudaGetLastError());
}

/// Enqueues acc += decode(body) with the rules the validation left in
/// scratch slot 0.
template <class P>
void quantizer_decode_enqueue(const std::byte* body, std::uint64_t n, std::uint32_t bucket, float* acc,
                              cudaStream_t stream, device_workspace& workspace)
{
  const std::uint64_t buckets = bucket_count(n, bucket);
  const auto* fields = reinterpret_cast<const std::uint8_t*>(body + P::scale_bytes * buckets);
  auto* rules = workspace.scratch<typename P::rule>(0, buckets);
  quantizer_decode_kernel<P>
      <<<quantizer_blocks(bucket_count(n, 8), 256), 256, 0, stream>>>(fields, n, bucket, rules, acc);
  TERSE_CUDA_TRY(cudaGetLastError());
}

/// Validates the body (header already checked, length exact), waits for
/// the verdict, and adds it into acc; malformed: errc::malformed_payload,
/// acc untouched.
template <class P>
void quantizer_decode_device(const std::byte* body, std::uint64_t n, std::uint32_t bucket, float* acc,
                             cudaStream_t stream, device_workspace& workspace, const char* what)
{
  if (n == 0) {
    return;
  }
  quantizer_validate_enqueue<P>(body, n, bucket, stream, workspace);
  workspace.check_status(stream, what);
  quantizer_decode_enqueue<P>(body, n, bucket, acc, stream, workspace);
}

}  // namespace terse::detail

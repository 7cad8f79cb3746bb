#pragma once
/// @file
/// Device machinery of the sparsifiers (topk, threshold, dgc). The device
/// sends the same bytes as the host because both send a selection that is a
/// function of the input alone: the exact top k (ties to the lower index),
/// or every key >= a threshold that both compute the same way.
///
/// Exact top-k on the device reads the input twice:
///
/// 1. a histogram of the keys' top 11 bits (plus a count of zeros) and a
///    one-block analysis that finds the bin holding the k-th largest key
///    (NaN and Inf land in the top bins, so this pass also finds them);
/// 2. cub::DeviceSelect::If keeps (index, bits) of every key in or above
///    that bin, in index order (about k plus one bin's worth);
///
/// then, among the candidates only, two more histogram levels (11 and 9 key
/// bits) pin the k-th key K exactly, a scan ranks the keys equal to K, and
/// cub::DeviceSelect::Flagged keeps key > K plus the first ties. Kernels
/// chain through a small state block in device memory; the host waits once
/// (to size the candidate buffer and to raise errc::non_finite) and at the
/// end. When the cut lands in the lowest bin (mostly zeros) the candidates
/// are the nonzero keys plus the first k positions, which hold every zero
/// the selection can take (the first q zeros lie below k), so the candidate
/// buffer stays near k however sparse the input is.

#include <terse/compress/detail/sparse_math.hpp>
#include <terse/compress/detail/sparse_payload.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/core/error.hpp>
#include <terse/core/philox.hpp>
#include <terse/core/span.hpp>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_select.cuh>
#include <cuda_runtime_api.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

namespace terse::detail {

/// Threads per block of every sparsifier kernel (the kernels are templates
/// on it, which also gives them the inline linkage a header needs).
inline constexpr int sparse_threads = 256;
/// Bins of the first two histogram levels (11 key bits each); the last
/// level has 512 (9 bits).
inline constexpr unsigned sparse_bins = 2048;

struct sparse_pair {
  std::uint32_t index;
  std::uint32_t bits;
};

/// The k-th-key search, carried from kernel to kernel in device memory.
struct sparse_select_state {
  std::uint64_t rank;        ///< rank (1-based, from the top) still sought inside `prefix`
  std::uint64_t capacity;    ///< bound on the candidates (set by level 0)
  std::uint64_t take_ties;   ///< keys equal to `key` the selection takes
  std::uint32_t prefix;      ///< key bits fixed so far
  std::uint32_t key;         ///< the k-th largest key (after level 2)
  std::uint32_t lower;       ///< candidates have key >= lower ...
  std::uint32_t below_k;     ///< ... or, when set, index < k
  std::uint32_t non_finite;  ///< level 0 saw NaN or Inf
  std::uint32_t unused;
};

/// The fixed-size device scratch of one call (workspace slot 0).
struct sparse_device_scratch {
  std::uint32_t hist[3][sparse_bins + 8];  ///< per level; hist[0][sparse_bins] counts zero keys
  sparse_select_state state;
  unsigned long long selected;    ///< candidates kept by the select
  unsigned long long emitted;     ///< pairs kept by the final select
  unsigned long long count;       ///< keys >= a threshold
  unsigned long long non_finite;  ///< NaN or Inf seen by a counting pass
  std::uint32_t threshold;        ///< a threshold computed on the device (dgc's sample)
  std::uint32_t unused;
};

/// Workspace slots: 0 the scratch above, 1 CUB's temporary storage, 2 the
/// candidates, 3 ranks, flags, the selection and dgc's sample.
inline constexpr int sparse_slot_scratch = 0;
inline constexpr int sparse_slot_cub = 1;
inline constexpr int sparse_slot_candidates = 2;
inline constexpr int sparse_slot_work = 3;

inline unsigned sparse_blocks(std::uint64_t work, unsigned cap = 4096)
{
  const std::uint64_t blocks = (work + sparse_threads - 1) / sparse_threads;
  return static_cast<unsigned>(std::clamp<std::uint64_t>(blocks, 1, cap));
}

// --- payload bytes ------------------------------------------------------------

/// Payloads may start at any byte: 32-bit access falls back to bytes.
__device__ inline std::uint32_t sparse_load_u32(const std::byte* at)
{
  if ((reinterpret_cast<std::uintptr_t>(at) & 3u) == 0) {
    return *reinterpret_cast<const std::uint32_t*>(at);
  }
  return static_cast<std::uint32_t>(at[0]) | static_cast<std::uint32_t>(at[1]) << 8 |
         static_cast<std::uint32_t>(at[2]) << 16 | static_cast<std::uint32_t>(at[3]) << 24;
}

__device__ inline void sparse_store_u32(std::byte* at, std::uint32_t value)
{
  if ((reinterpret_cast<std::uintptr_t>(at) & 3u) == 0) {
    *reinterpret_cast<std::uint32_t*>(at) = value;
    return;
  }
  for (int b = 0; b < 4; ++b) {
    at[b] = static_cast<std::byte>(value >> (8 * b));
  }
}

/// The 24 header bytes, made on the host by wire::write_header and passed
/// to a kernel by value (so encode never copies from host memory).
struct sparse_header_bytes {
  std::byte bytes[wire::header_bytes];
};

inline sparse_header_bytes sparse_make_header(wire::codec_id id, float parameter, std::uint64_t n, std::uint64_t count)
{
  sparse_header_bytes out;
  wire::write_header(host_span<std::byte>(out.bytes, wire::header_bytes),
                     wire::header{.codec = id, .param = float_bits(parameter), .count = n, .aux = count});
  return out;
}

template <int Threads>
__global__ void __launch_bounds__(Threads) sparse_header_kernel(std::byte* out, sparse_header_bytes header)
{
  for (unsigned b = threadIdx.x; b < wire::header_bytes; b += Threads) {
    out[b] = header.bytes[b];
  }
}

/// Pairs [0, count) to the payload body: indices first, then values.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_split_kernel(const sparse_pair* pairs, std::uint64_t count, std::byte* body)
{
  for (std::uint64_t j = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x; j < count;
       j += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    const sparse_pair p = pairs[j];
    sparse_store_u32(body + 4 * j, p.index);
    sparse_store_u32(body + 4 * count + 4 * j, p.bits);
  }
}

/// k = n: every index and value, counting NaN and Inf.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_all_kernel(const float* in, std::uint64_t n, std::byte* body, unsigned long long* non_finite)
{
  bool bad = false;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    const std::uint32_t bits = float_bits(in[i]);
    bad |= magnitude_key_of_bits(bits) >= non_finite_key;
    sparse_store_u32(body + 4 * i, static_cast<std::uint32_t>(i));
    sparse_store_u32(body + 4 * n + 4 * i, bits);
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) {
    atomicAdd(non_finite, 1ull);
  }
}

// --- histograms -----------------------------------------------------------------

/// local[bin] += 1 for every lane with `valid`, one shared atomic per
/// distinct bin in the warp (gradients crowd into a few bins). Every lane of
/// the warp must call it (the loops below keep warps converged).
__device__ inline void sparse_count_bin(std::uint32_t* local, std::uint32_t bin, bool valid)
{
  const unsigned peers = __match_any_sync(0xffffffffu, valid ? bin : 0xffffffffu);
  if (valid && (threadIdx.x & 31u) == static_cast<unsigned>(__ffs(peers) - 1)) {
    atomicAdd(&local[bin], static_cast<std::uint32_t>(__popc(peers)));
  }
}

/// Level 0 over the input: hist[key >> 20], and hist[sparse_bins] counts
/// zero keys. Each block steps through the input a block-width at a time,
/// so all lanes of a warp run the same iterations.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_input_histogram_kernel(const float* in, std::uint64_t n, std::uint32_t* hist)
{
  __shared__ std::uint32_t local[sparse_bins + 1];
  for (unsigned b = threadIdx.x; b <= sparse_bins; b += Threads) {
    local[b] = 0;
  }
  __syncthreads();
  for (std::uint64_t base = blockIdx.x * static_cast<std::uint64_t>(Threads); base < n;
       base += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    const std::uint64_t i = base + threadIdx.x;
    const bool valid = i < n;
    const std::uint32_t key = valid ? magnitude_key(in[i]) : 0u;
    sparse_count_bin(local, key >> 20, valid);
    const unsigned zeros = __ballot_sync(0xffffffffu, valid && key == 0);
    if (valid && key == 0 && (threadIdx.x & 31u) == static_cast<unsigned>(__ffs(zeros) - 1)) {
      atomicAdd(&local[sparse_bins], static_cast<std::uint32_t>(__popc(zeros)));
    }
  }
  __syncthreads();
  for (unsigned b = threadIdx.x; b <= sparse_bins; b += Threads) {
    if (local[b] != 0) {
      atomicAdd(&hist[b], local[b]);
    }
  }
}

/// Levels 1 and 2 over the candidates: among keys whose bits above this
/// level equal state.prefix, hist[level][bin of this level's bits].
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_candidate_histogram_kernel(const sparse_pair* pairs, sparse_device_scratch* scratch, int level)
{
  __shared__ std::uint32_t local[sparse_bins];
  const unsigned shift = level == 1 ? 9u : 0u;
  const unsigned match_shift = level == 1 ? 20u : 9u;
  const std::uint32_t mask = level == 1 ? 0x7ffu : 0x1ffu;
  const std::uint32_t prefix = scratch->state.prefix;
  const std::uint64_t count = scratch->selected;
  for (unsigned b = threadIdx.x; b < sparse_bins; b += Threads) {
    local[b] = 0;
  }
  __syncthreads();
  for (std::uint64_t base = blockIdx.x * static_cast<std::uint64_t>(Threads); base < count;
       base += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    const std::uint64_t j = base + threadIdx.x;
    const std::uint32_t key = j < count ? magnitude_key_of_bits(pairs[j].bits) : 0u;
    sparse_count_bin(local, (key >> shift) & mask, j < count && (key >> match_shift) == prefix);
  }
  __syncthreads();
  for (unsigned b = threadIdx.x; b <= mask; b += Threads) {
    if (local[b] != 0) {
      atomicAdd(&scratch->hist[level][b], local[b]);
    }
  }
}

/// One block: finds the bin of `level` that holds the sought rank (from the
/// top) and narrows the state to it. Level 0 seeks rank k over the whole
/// input and also sets the candidate rule and capacity; level 2 fixes K.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_analyze_kernel(sparse_device_scratch* scratch, int level, std::uint64_t k)
{
  using scan_t = cub::BlockScan<std::uint64_t, Threads>;
  __shared__ typename scan_t::TempStorage temp;
  const unsigned bins = level == 2 ? 512u : sparse_bins;
  const unsigned per = bins / Threads;
  const std::uint32_t* hist = scratch->hist[level];
  sparse_select_state& state = scratch->state;
  const std::uint64_t rank = level == 0 ? k : state.rank;
  // Thread t owns bins [top - per, top) with top = bins - per * t: thread 0
  // holds the largest keys, so an exclusive scan counts the keys above.
  const unsigned top = bins - per * threadIdx.x;
  std::uint64_t mine = 0;
  for (unsigned b = top - per; b < top; ++b) {
    mine += hist[b];
  }
  std::uint64_t above = 0;
  scan_t(temp).ExclusiveSum(mine, above);
  if (above < rank && rank <= above + mine) {
    unsigned bin = top;
    do {
      --bin;
      if (above + hist[bin] >= rank) {
        break;
      }
      above += hist[bin];
    } while (bin > top - per);
    const std::uint64_t inside = rank - above;  // rank within `bin`
    if (level == 0) {
      std::uint64_t non_finite = 0;
      for (unsigned b = non_finite_key >> 20; b < sparse_bins; ++b) {
        non_finite += hist[b];
      }
      state.non_finite = non_finite != 0 ? 1u : 0u;
      state.prefix = bin;
      // Keys in `bin` and above, less the zeros when the bin is the lowest
      // (whose candidates are key >= 1 or index < k instead).
      const std::uint64_t at_or_above = above + hist[bin];
      state.lower = bin == 0 ? 1u : bin << 20;
      state.below_k = bin == 0 ? 1u : 0u;
      state.capacity = bin == 0 ? at_or_above - hist[sparse_bins] + k : at_or_above;
    } else if (level == 1) {
      state.prefix = state.prefix << 11 | bin;
    } else {
      state.key = state.prefix << 9 | bin;
      state.take_ties = inside;
    }
    state.rank = inside;
  }
}

// --- candidates and the final cut ----------------------------------------------

/// (index, bits) of element i, for DeviceSelect over a counting iterator.
struct sparse_make_pair {
  const float* in;
  __host__ __device__ sparse_pair operator()(std::uint32_t i) const { return {i, float_bits(in[i])}; }
};

/// The candidate rule set by level 0.
struct sparse_is_candidate {
  const sparse_select_state* state;
  std::uint64_t k;
  __device__ bool operator()(const sparse_pair& p) const
  {
    return magnitude_key_of_bits(p.bits) >= state->lower || (state->below_k != 0 && p.index < k);
  }
};

/// key >= a threshold given by value or, when `from` is set, read there.
struct sparse_at_least {
  const std::uint32_t* from;
  std::uint32_t value;
  __device__ bool operator()(const sparse_pair& p) const
  {
    return magnitude_key_of_bits(p.bits) >= (from != nullptr ? *from : value);
  }
};

/// flag[j] = 1 for candidates whose key equals K (then scanned into ranks).
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_tie_flag_kernel(const sparse_pair* pairs, const sparse_device_scratch* scratch, std::uint64_t capacity,
                           std::uint32_t* flag)
{
  const std::uint64_t count = scratch->selected;
  const std::uint32_t key = scratch->state.key;
  for (std::uint64_t j = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x; j < capacity;
       j += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    flag[j] = (j < count && magnitude_key_of_bits(pairs[j].bits) == key) ? 1u : 0u;
  }
}

/// keep[j]: key > K, or key == K among the first take_ties such keys.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_keep_kernel(const sparse_pair* pairs, const sparse_device_scratch* scratch, std::uint64_t capacity,
                       const std::uint32_t* tie_rank, std::uint8_t* keep)
{
  const std::uint64_t count = scratch->selected;
  const std::uint32_t key = scratch->state.key;
  const std::uint64_t ties = scratch->state.take_ties;
  for (std::uint64_t j = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x; j < capacity;
       j += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    bool take = false;
    if (j < count) {
      const std::uint32_t candidate = magnitude_key_of_bits(pairs[j].bits);
      take = candidate > key || (candidate == key && tie_rank[j] < ties);
    }
    keep[j] = take ? 1u : 0u;
  }
}

/// Counts keys >= threshold and NaN/Inf keys (one read of the input).
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_count_kernel(const float* in, std::uint64_t n, const std::uint32_t* threshold_from,
                        std::uint32_t threshold_value, unsigned long long* count, unsigned long long* non_finite)
{
  using reduce_t = cub::BlockReduce<unsigned long long, Threads>;
  __shared__ typename reduce_t::TempStorage temp;
  const std::uint32_t threshold = threshold_from != nullptr ? *threshold_from : threshold_value;
  unsigned long long passing = 0;
  unsigned long long bad = 0;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    const std::uint32_t key = magnitude_key(in[i]);
    passing += key >= threshold ? 1u : 0u;
    bad += key >= non_finite_key ? 1u : 0u;
  }
  const unsigned long long block_passing = reduce_t(temp).Sum(passing);
  __syncthreads();
  const unsigned long long block_bad = reduce_t(temp).Sum(bad);
  if (threadIdx.x == 0) {
    atomicAdd(count, block_passing);
    atomicAdd(non_finite, block_bad);
  }
}

/// dgc's sample: keys[j] = key of in[sample_position(stream.bits(j), n)].
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_sample_kernel(const float* in, std::uint64_t n, random_stream stream, std::uint64_t m, std::uint32_t* keys)
{
  for (std::uint64_t j = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x; j < m;
       j += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    keys[j] = magnitude_key(in[sample_position(stream.bits(j), n)]);
  }
}

/// threshold = clamp(sorted_descending[rank - 1], 1, non_finite_key).
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_pick_threshold_kernel(const std::uint32_t* sorted_descending, std::uint64_t rank, std::uint32_t* threshold)
{
  if (threadIdx.x == 0) {
    const std::uint32_t key = sorted_descending[rank - 1];
    *threshold = key < 1u ? 1u : (key > non_finite_key ? non_finite_key : key);
  }
}

// --- decoding -------------------------------------------------------------------

/// ORs 1 into status for an index out of range or out of order, a
/// non-finite value or one below min_key.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_validate_kernel(const std::byte* body, std::uint64_t count, std::uint64_t n, std::uint32_t min_key,
                           std::uint32_t* status)
{
  bool bad = false;
  for (std::uint64_t j = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x; j < count;
       j += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    const std::uint32_t index = sparse_load_u32(body + 4 * j);
    const std::uint32_t key = magnitude_key_of_bits(sparse_load_u32(body + 4 * count + 4 * j));
    bad |= index >= n || key >= non_finite_key || key < min_key;
    bad |= j > 0 && sparse_load_u32(body + 4 * (j - 1)) >= index;
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) {
    atomicOr(status, 1u);
  }
}

/// acc[index] += value for every pair of a validated body (indices are
/// distinct: no atomics).
template <int Threads>
__global__ void __launch_bounds__(Threads)
    sparse_scatter_add_kernel(const std::byte* body, std::uint64_t count, float* acc)
{
  for (std::uint64_t j = blockIdx.x * static_cast<std::uint64_t>(Threads) + threadIdx.x; j < count;
       j += static_cast<std::uint64_t>(gridDim.x) * Threads) {
    acc[sparse_load_u32(body + 4 * j)] += bits_float(sparse_load_u32(body + 4 * count + 4 * j));
  }
}

// --- host orchestration -----------------------------------------------------------

/// Runs a CUB algorithm `call(temp, bytes)` with its temporary storage in
/// slot 1. Callers size slot 1 before queuing work that may still use it.
template <class Call>
void sparse_cub(device_workspace& workspace, Call call)
{
  std::size_t bytes = 0;
  TERSE_CUDA_TRY(call(nullptr, bytes));
  void* temp = workspace.scratch<std::byte>(sparse_slot_cub, bytes + 1);
  TERSE_CUDA_TRY(call(temp, bytes));
}

/// The temporary bytes a CUB algorithm asks for.
template <class Call>
std::size_t sparse_cub_bytes(Call call)
{
  std::size_t bytes = 0;
  TERSE_CUDA_TRY(call(nullptr, bytes));
  return bytes;
}

/// Slot 0, zeroed on the stream.
inline sparse_device_scratch* sparse_scratch(device_workspace& workspace, cudaStream_t stream)
{
  auto* scratch = workspace.scratch<sparse_device_scratch>(sparse_slot_scratch, 1);
  TERSE_CUDA_TRY(cudaMemsetAsync(scratch, 0, sizeof(sparse_device_scratch), stream));
  return scratch;
}

/// Waits for the stream and returns a host copy of the scratch.
inline sparse_device_scratch sparse_read_back(const sparse_device_scratch* scratch, cudaStream_t stream,
                                              device_workspace& workspace)
{
  auto* host = workspace.pinned<sparse_device_scratch>(1);
  TERSE_CUDA_TRY(cudaMemcpyAsync(host, scratch, sizeof(sparse_device_scratch), cudaMemcpyDeviceToHost, stream));
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
  return *host;
}

inline void sparse_throw_non_finite(const char* codec)
{
  TERSE_FAIL(errc::non_finite,
             std::string(codec) + ": the input holds NaN or Inf; sparsifiers code finite values only");
}

/// k = n: every pair to the body (waits; raises non_finite).
inline void sparse_device_all(const float* in, std::uint64_t n, std::byte* body, cudaStream_t stream,
                              device_workspace& workspace, const char* codec)
{
  auto* scratch = sparse_scratch(workspace, stream);
  sparse_all_kernel<sparse_threads><<<sparse_blocks(n), sparse_threads, 0, stream>>>(in, n, body, &scratch->non_finite);
  TERSE_CUDA_TRY(cudaGetLastError());
  if (sparse_read_back(scratch, stream, workspace).non_finite != 0) {
    sparse_throw_non_finite(codec);
  }
}

/// Exact top-k of in[0, n) (1 <= k < n) into the body of a k-pair payload,
/// index order, ties to the lower index. Waits for the stream; returns K,
/// the k-th largest key. Raises errc::non_finite for NaN or Inf.
inline std::uint32_t sparse_device_top_k(const float* in, std::uint64_t n, std::uint64_t k, std::byte* body,
                                         cudaStream_t stream, device_workspace& workspace, const char* codec)
{
  constexpr int threads = sparse_threads;
  auto* scratch = sparse_scratch(workspace, stream);
  // 1. the histogram of the input and the bin of the k-th key.
  sparse_input_histogram_kernel<threads><<<sparse_blocks(n / 8, 2048), threads, 0, stream>>>(in, n, scratch->hist[0]);
  TERSE_CUDA_TRY(cudaGetLastError());
  sparse_analyze_kernel<threads><<<1, threads, 0, stream>>>(scratch, 0, k);
  TERSE_CUDA_TRY(cudaGetLastError());
  const sparse_device_scratch level0 = sparse_read_back(scratch, stream, workspace);
  if (level0.state.non_finite != 0) {
    sparse_throw_non_finite(codec);
  }
  const std::uint64_t capacity = level0.state.capacity;

  // Everything the rest needs, sized now (the stream is idle, so growing a
  // slot frees nothing in use).
  const auto pairs_in =
      thrust::make_transform_iterator(thrust::counting_iterator<std::uint32_t>(0), sparse_make_pair{in});
  auto* candidates = workspace.scratch<sparse_pair>(sparse_slot_candidates, capacity + 1);
  const std::size_t rank_bytes = (4 * capacity + 255) / 256 * 256;
  const std::size_t keep_bytes = (capacity + 255) / 256 * 256;
  auto* work = workspace.scratch<std::byte>(sparse_slot_work, rank_bytes + keep_bytes + 8 * k + 8);
  auto* tie_rank = reinterpret_cast<std::uint32_t*>(work);
  auto* keep = reinterpret_cast<std::uint8_t*>(work + rank_bytes);
  auto* chosen = reinterpret_cast<sparse_pair*>(work + rank_bytes + keep_bytes);
  const auto select_candidates = [&](void* temp, std::size_t& bytes) {
    return cub::DeviceSelect::If(temp, bytes, pairs_in, candidates, &scratch->selected, static_cast<std::int64_t>(n),
                                 sparse_is_candidate{&scratch->state, k}, stream);
  };
  const auto rank_ties = [&](void* temp, std::size_t& bytes) {
    return cub::DeviceScan::ExclusiveSum(temp, bytes, tie_rank, static_cast<std::int64_t>(capacity), stream);
  };
  const auto select_chosen = [&](void* temp, std::size_t& bytes) {
    return cub::DeviceSelect::Flagged(temp, bytes, candidates, keep, chosen, &scratch->emitted,
                                      static_cast<std::int64_t>(capacity), stream);
  };
  workspace.scratch<std::byte>(
      sparse_slot_cub,
      std::max({sparse_cub_bytes(select_candidates), sparse_cub_bytes(rank_ties), sparse_cub_bytes(select_chosen)}) +
          1);

  // 2. the candidates, then the exact k-th key among them.
  sparse_cub(workspace, select_candidates);
  const unsigned candidate_blocks = sparse_blocks(capacity, 1024);
  for (int level = 1; level <= 2; ++level) {
    sparse_candidate_histogram_kernel<threads><<<candidate_blocks, threads, 0, stream>>>(candidates, scratch, level);
    TERSE_CUDA_TRY(cudaGetLastError());
    sparse_analyze_kernel<threads><<<1, threads, 0, stream>>>(scratch, level, k);
    TERSE_CUDA_TRY(cudaGetLastError());
  }
  // 3. keys above K and the first ties, in index order, to the payload.
  sparse_tie_flag_kernel<threads><<<candidate_blocks, threads, 0, stream>>>(candidates, scratch, capacity, tie_rank);
  TERSE_CUDA_TRY(cudaGetLastError());
  sparse_cub(workspace, rank_ties);
  sparse_keep_kernel<threads><<<candidate_blocks, threads, 0, stream>>>(candidates, scratch, capacity, tie_rank, keep);
  TERSE_CUDA_TRY(cudaGetLastError());
  sparse_cub(workspace, select_chosen);
  sparse_split_kernel<threads><<<sparse_blocks(k, 1024), threads, 0, stream>>>(chosen, k, body);
  TERSE_CUDA_TRY(cudaGetLastError());
  const sparse_device_scratch done = sparse_read_back(scratch, stream, workspace);
  TERSE_CHECK(done.emitted == k, errc::internal,
              std::string(codec) + ": the device selection kept " + std::to_string(done.emitted) + " of " +
                  std::to_string(k) + " values");
  return done.state.key;
}

/// Every key >= threshold (from device memory when `threshold_from` is set)
/// into the body of a payload; the count must be known (`count`). Waits.
inline void sparse_device_at_least(const float* in, std::uint64_t n, const std::uint32_t* threshold_from,
                                   std::uint32_t threshold_value, std::uint64_t count, std::byte* body,
                                   sparse_device_scratch* scratch, cudaStream_t stream, device_workspace& workspace)
{
  if (count == 0) {
    return;
  }
  const auto pairs_in =
      thrust::make_transform_iterator(thrust::counting_iterator<std::uint32_t>(0), sparse_make_pair{in});
  auto* candidates = workspace.scratch<sparse_pair>(sparse_slot_candidates, count + 1);
  sparse_cub(workspace, [&](void* temp, std::size_t& bytes) {
    return cub::DeviceSelect::If(temp, bytes, pairs_in, candidates, &scratch->selected, static_cast<std::int64_t>(n),
                                 sparse_at_least{threshold_from, threshold_value}, stream);
  });
  sparse_split_kernel<sparse_threads>
      <<<sparse_blocks(count, 1024), sparse_threads, 0, stream>>>(candidates, count, body);
  TERSE_CUDA_TRY(cudaGetLastError());
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
}

/// Counts keys >= threshold and NaN/Inf in one pass; waits and returns the
/// scratch with `count` and `non_finite` (and dgc's `threshold`) filled in.
inline sparse_device_scratch sparse_device_count(const float* in, std::uint64_t n, const std::uint32_t* threshold_from,
                                                 std::uint32_t threshold_value, sparse_device_scratch* scratch,
                                                 cudaStream_t stream, device_workspace& workspace)
{
  sparse_count_kernel<sparse_threads><<<sparse_blocks(n / 8, 2048), sparse_threads, 0, stream>>>(
      in, n, threshold_from, threshold_value, &scratch->count, &scratch->non_finite);
  TERSE_CUDA_TRY(cudaGetLastError());
  return sparse_read_back(scratch, stream, workspace);
}

/// The device decoder shared by the three codecs: the header is validated
/// on the host (the same checks as the host decoder), the pairs by a kernel,
/// and only then are they added. Waits for the stream.
template <class CheckHeader>
void sparse_device_decode_add(device_span<const std::byte> payload, device_span<float> acc, wire::codec_id id,
                              CheckHeader check_header, cudaStream_t stream, device_workspace& workspace)
{
  const std::string codec(wire::to_string(id));
  TERSE_CHECK(payload.size() >= wire::header_bytes, errc::malformed_payload,
              codec + " payload of " + std::to_string(payload.size()) + " bytes is shorter than its header");
  auto* head = workspace.pinned<std::byte>(wire::header_bytes);
  TERSE_CUDA_TRY(cudaMemcpyAsync(head, payload.data(), wire::header_bytes, cudaMemcpyDeviceToHost, stream));
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
  const sparse_header_facts facts = check_sparse_header(host_span<const std::byte>(head, wire::header_bytes),
                                                        payload.size(), id, acc.size(), check_header);
  if (facts.count == 0) {
    return;
  }
  const std::byte* body = payload.data() + wire::header_bytes;
  workspace.clear_status(stream);
  sparse_validate_kernel<sparse_threads><<<sparse_blocks(facts.count, 1024), sparse_threads, 0, stream>>>(
      body, facts.count, acc.size(), facts.min_key, workspace.status());
  TERSE_CUDA_TRY(cudaGetLastError());
  workspace.check_status(stream, (codec + " decode_add").c_str());
  sparse_scatter_add_kernel<sparse_threads>
      <<<sparse_blocks(facts.count, 1024), sparse_threads, 0, stream>>>(body, facts.count, acc.data());
  TERSE_CUDA_TRY(cudaGetLastError());
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
}

}  // namespace terse::detail

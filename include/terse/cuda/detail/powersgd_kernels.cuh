#pragma once
/// @file
/// The small kernels of PowerSGD's device step (the matrix products are
/// cuBLAS): drawing and normalising Q, the NaN/Inf scan that raises the
/// flag, Gram–Schmidt on the averaged P and the overflow check on the
/// averaged Q. The math is the host's (powersgd_math.hpp); sums run in
/// double, in another order than on the host, so results agree to rounding,
/// not bit for bit.

#include <terse/compress/detail/powersgd_math.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>

#include <cub/block/block_reduce.cuh>

#include <cstdint>

namespace terse::detail {

/// Threads per block of every PowerSGD kernel. The kernels are templates
/// on it, which also gives them the inline linkage a header needs.
inline constexpr int powersgd_threads = 256;

/// Bits the kernels OR into the device status word.
inline constexpr std::uint32_t powersgd_status_flagged = 1;   ///< some rank's values hold NaN or Inf
inline constexpr std::uint32_t powersgd_status_overflow = 2;  ///< the averaged factors overflow float

template <int Threads>
struct powersgd_block_scratch {
  using reduce = cub::BlockReduce<double, Threads>;
  typename reduce::TempStorage temp;
  double result;
};

/// Block-wide sum (or max) of `value`, returned to every thread.
template <int Threads>
__device__ double powersgd_block_sum(double value, powersgd_block_scratch<Threads>& scratch)
{
  const double total = typename powersgd_block_scratch<Threads>::reduce(scratch.temp).Sum(value);
  if (threadIdx.x == 0) {
    scratch.result = total;
  }
  __syncthreads();
  const double result = scratch.result;
  __syncthreads();  // the scratch is reused by the next call
  return result;
}

struct powersgd_max {
  __device__ double operator()(double a, double b) const { return a > b ? a : b; }
};

template <int Threads>
__device__ double powersgd_block_max(double value, powersgd_block_scratch<Threads>& scratch)
{
  const double total = typename powersgd_block_scratch<Threads>::reduce(scratch.temp).Reduce(value, powersgd_max{});
  if (threadIdx.x == 0) {
    scratch.result = total;
  }
  __syncthreads();
  const double result = scratch.result;
  __syncthreads();
  return result;
}

__device__ inline bool powersgd_is_non_finite(float value)
{
  return (__float_as_uint(value) & 0x7f800000u) == 0x7f800000u;
}

/// qt[i] = the shared-stream start value i (Q stored transposed, k×p).
template <int Threads>
__global__ void __launch_bounds__(Threads)
    powersgd_seed_kernel(float* qt, std::uint64_t count, random_stream shared, std::uint64_t seed_at = 0)
{
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x) {
    qt[i] = powersgd_seed_value(shared, seed_at + i);
  }
}

/// One block per column c of Q (row c of the transposed qt): q_hat's row c
/// is that row scaled to unit length, re-drawn from the shared stream first
/// when it is zero (as normalise_columns on the host).
template <int Threads>
__global__ void __launch_bounds__(Threads) powersgd_normalise_kernel(const float* qt, float* q_hat, std::uint64_t p,
                                                                     random_stream shared, std::uint64_t seed_at = 0)
{
  __shared__ powersgd_block_scratch<Threads> scratch;
  const std::uint64_t c = blockIdx.x;
  const float* from = qt + c * p;
  float* to = q_hat + c * p;
  double sum = 0;
  for (std::uint64_t j = threadIdx.x; j < p; j += Threads) {
    sum += static_cast<double>(from[j]) * from[j];
  }
  sum = powersgd_block_sum(sum, scratch);
  if (sum == 0) {
    double drawn = 0;
    for (std::uint64_t j = threadIdx.x; j < p; j += Threads) {
      to[j] = powersgd_seed_value(shared, seed_at + c * p + j);
      drawn += static_cast<double>(to[j]) * to[j];
    }
    sum = powersgd_block_sum(drawn, scratch);
    if (sum == 0) {  // every draw exactly zero: any unit vector will do
      if (threadIdx.x == 0) {
        to[c % p] = 1.0f;
      }
      sum = 1;
      __syncthreads();
    }
  } else {
    for (std::uint64_t j = threadIdx.x; j < p; j += Threads) {
      to[j] = from[j];
    }
  }
  __syncthreads();
  const double norm = sqrt(sum);
  for (std::uint64_t j = threadIdx.x; j < p; j += Threads) {
    to[j] = static_cast<float>(to[j] / norm);
  }
}

/// Sets *flag to 1 when any of the n values is NaN or ±Inf (the flag slot
/// of the P allreduce, zeroed before).
template <int Threads>
__global__ void __launch_bounds__(Threads) powersgd_scan_kernel(const float* values, std::uint64_t n, float* flag)
{
  bool bad = false;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x) {
    bad |= powersgd_is_non_finite(values[i]);
  }
  if (__syncthreads_or(bad) != 0 && threadIdx.x == 0) {
    *flag = 1.0f;  // every writer writes the same value
  }
}

/// One block: makes the k columns of the averaged P (m×k row-major)
/// orthonormal by modified Gram–Schmidt in double with a second pass, a
/// dependent or zero column becoming zero, as orthonormalise_columns on the
/// host. When the averaged flag slot p[m·k] is nonzero it raises
/// powersgd_status_flagged, when P holds NaN/Inf powersgd_status_overflow,
/// and zeroes P instead (the step is then refused after the Q allreduce).
/// Each thread owns rows i ≡ threadIdx.x (mod blockDim.x) throughout, so
/// only the reductions synchronise.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    powersgd_orthonormalise_kernel(float* p, std::uint64_t m, std::uint64_t k, double* work, std::uint32_t* status,
                                   const float* flag)
{
  __shared__ powersgd_block_scratch<Threads> scratch;
  const bool flagged = *flag != 0.0f;
  bool bad = false;
  for (std::uint64_t i = threadIdx.x; i < m; i += Threads) {
    for (std::uint64_t c = 0; c < k; ++c) {
      const float x = p[i * k + c];
      bad |= powersgd_is_non_finite(x);
      work[i * k + c] = x;
    }
  }
  bad = __syncthreads_or(bad) != 0;
  if (flagged || bad) {
    for (std::uint64_t i = threadIdx.x; i < m * k; i += Threads) {
      p[i] = 0.0f;
    }
    if (threadIdx.x == 0) {
      atomicOr(status, flagged ? powersgd_status_flagged : powersgd_status_overflow);
    }
    return;
  }
  for (std::uint64_t c = 0; c < k; ++c) {
    double own = 0;
    for (std::uint64_t i = threadIdx.x; i < m; i += Threads) {
      own += work[i * k + c] * work[i * k + c];
    }
    const double original = sqrt(powersgd_block_sum(own, scratch));
    for (int pass = 0; pass < 2; ++pass) {
      for (std::uint64_t d = 0; d < c; ++d) {
        double part = 0;
        for (std::uint64_t i = threadIdx.x; i < m; i += Threads) {
          part += work[i * k + d] * work[i * k + c];
        }
        const double dot = powersgd_block_sum(part, scratch);
        if (dot != 0) {
          for (std::uint64_t i = threadIdx.x; i < m; i += Threads) {
            work[i * k + c] -= dot * work[i * k + d];
          }
        }
      }
    }
    own = 0;
    for (std::uint64_t i = threadIdx.x; i < m; i += Threads) {
      own += work[i * k + c] * work[i * k + c];
    }
    const double norm = sqrt(powersgd_block_sum(own, scratch));
    const bool independent = norm > powersgd_dependent_tolerance * original;
    for (std::uint64_t i = threadIdx.x; i < m; i += Threads) {
      work[i * k + c] = independent ? work[i * k + c] / norm : 0.0;
    }
  }
  for (std::uint64_t i = threadIdx.x; i < m; i += Threads) {
    for (std::uint64_t c = 0; c < k; ++c) {
      p[i * k + c] = static_cast<float>(work[i * k + c]);
    }
  }
}

/// One block: raises powersgd_status_overflow unless the averaged Qᵀ (k×p)
/// is finite and max_i ‖P̂_i‖ · max_j ‖Q_j‖ ≤ powersgd_max_product, so the
/// decoded values cannot overflow.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    powersgd_check_kernel(const float* p, std::uint64_t m, const float* qt, std::uint64_t cols, std::uint64_t k,
                          std::uint32_t* status)
{
  __shared__ powersgd_block_scratch<Threads> scratch;
  double p_max = 0;
  for (std::uint64_t i = threadIdx.x; i < m; i += Threads) {
    double sum = 0;
    for (std::uint64_t c = 0; c < k; ++c) {
      sum += static_cast<double>(p[i * k + c]) * p[i * k + c];
    }
    p_max = fmax(p_max, sum);
  }
  double q_max = 0;
  bool bad = false;
  for (std::uint64_t j = threadIdx.x; j < cols; j += Threads) {
    double sum = 0;
    for (std::uint64_t c = 0; c < k; ++c) {
      const float x = qt[c * cols + j];
      bad |= powersgd_is_non_finite(x);
      sum += static_cast<double>(x) * x;
    }
    q_max = fmax(q_max, sum);
  }
  p_max = powersgd_block_max(p_max, scratch);
  q_max = powersgd_block_max(q_max, scratch);
  bad = __syncthreads_or(bad) != 0;
  if (threadIdx.x == 0 && (bad || sqrt(p_max) * sqrt(q_max) > powersgd_max_product)) {
    atomicOr(status, powersgd_status_overflow);
  }
}

/// Per tensor: raises the status for the flag (some rank's values hold
/// NaN/Inf) and for a non-finite averaged value among the `n` of `values`
/// (a dense tensor whose average overflowed). Runs even when no matrix's
/// orthonormalisation reads the flag.
template <int Threads>
__global__ void __launch_bounds__(Threads)
    powersgd_status_kernel(const float* values, std::uint64_t n, const float* flag, std::uint32_t* status)
{
  bool bad = false;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x) {
    bad |= powersgd_is_non_finite(values[i]);
  }
  bad = __syncthreads_or(bad) != 0;
  if (threadIdx.x == 0) {
    if (blockIdx.x == 0 && *flag != 0.0f) {
      atomicOr(status, powersgd_status_flagged);
    } else if (bad) {
      atomicOr(status, powersgd_status_overflow);
    }
  }
}

}  // namespace terse::detail

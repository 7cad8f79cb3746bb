#pragma once
/// @file
/// The kernels of the schedules on device buffers (cuda/schedules.cuh):
/// the monitored sums in the fixed blocked order of
/// schedule/detail/blocked_sum.hpp (one thread per block of terms, then one
/// thread adding the partials in order: the host's bits), FDA's chunked
/// AMS sketch, and the elementwise delta and outer-step updates.

#include <terse/core/cuda_error.hpp>
#include <terse/schedule/detail/ams_sketch.hpp>
#include <terse/schedule/detail/blocked_sum.hpp>
#include <terse/schedule/detail/outer_math.hpp>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace terse::schedule::detail::device {

inline constexpr int threads = 256;

inline unsigned grid_for(std::size_t n) noexcept
{
  return static_cast<unsigned>(std::clamp<std::size_t>((n + threads - 1) / threads, 1, 65535));
}

#define TERSE_SCHEDULE_GRID_STRIDE(i, n)                                            \
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < (n); \
       i += std::size_t{gridDim.x} * blockDim.x)

template <class Term>
__global__ void block_partials_kernel(Term term, std::size_t n, std::size_t blocks, double* partials)
{
  TERSE_SCHEDULE_GRID_STRIDE(k, blocks)
  {
    partials[k] = block_partial(term, k, n);
  }
}

template <class = void>
__global__ void add_partials_kernel(const double* partials, std::size_t blocks, double* out)
{
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    *out = add_partials(partials, blocks);
  }
}

/// *out = Σ term(i), i < n, in the fixed blocked order, on `stream`.
/// `partials` holds reduction_blocks(n) doubles.
template <class Term>
void blocked_sum(const Term& term, std::size_t n, double* partials, double* out, cudaStream_t stream)
{
  const std::size_t blocks = reduction_blocks(n);
  if (blocks != 0) {
    block_partials_kernel<<<grid_for(blocks), threads, 0, stream>>>(term, n, blocks, partials);
    TERSE_CUDA_TRY(cudaGetLastError());
  }
  add_partials_kernel<><<<1, 1, 0, stream>>>(partials, blocks, out);
  TERSE_CUDA_TRY(cudaGetLastError());
}

/// *path += √(*squares) (event_triggered's gradient path, as the host adds it).
template <class = void>
__global__ void add_sqrt_kernel(const double* squares, double* path)
{
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    *path = add_rn(*path, __dsqrt_rn(*squares));
  }
}

/// out = a − b (float).
template <class = void>
__global__ void subtract_kernel(const float* a, const float* b, float* out, std::size_t n)
{
  TERSE_SCHEDULE_GRID_STRIDE(i, n)
  {
    out[i] = a[i] - b[i];
  }
}

/// reference += delta; parameters = reference.
template <class = void>
__global__ void apply_delta_kernel(float* reference, const float* delta, float* parameters, std::size_t n)
{
  TERSE_SCHEDULE_GRID_STRIDE(i, n)
  {
    reference[i] += delta[i];
    parameters[i] = reference[i];
  }
}

/// parameters = start + delta.
template <class = void>
__global__ void add_to_kernel(const float* start, const float* delta, float* parameters, std::size_t n)
{
  TERSE_SCHEDULE_GRID_STRIDE(i, n)
  {
    parameters[i] = start[i] + delta[i];
  }
}

template <class = void>
__global__ void widen_kernel(const float* in, double* out, std::size_t n)
{
  TERSE_SCHEDULE_GRID_STRIDE(i, n)
  {
    out[i] = static_cast<double>(in[i]);
  }
}

template <class = void>
__global__ void narrow_kernel(const double* in, float* out, std::size_t n)
{
  TERSE_SCHEDULE_GRID_STRIDE(i, n)
  {
    out[i] = static_cast<float>(in[i]);
  }
}

/// ξ ← update / ‖update‖ when the norm is positive (√ of *squares, as the host).
template <class = void>
__global__ void direction_kernel(const float* update, const double* squares, float* xi, std::size_t n)
{
  const double norm = __dsqrt_rn(*squares);
  if (norm > 0) {
    TERSE_SCHEDULE_GRID_STRIDE(i, n)
    {
      xi[i] = static_cast<float>(__ddiv_rn(static_cast<double>(update[i]), norm));
    }
  }
}

template <class = void>
__global__ void slowmo_kernel(float* parameters, float* momentum, const float* outer, double alpha, double beta,
                              double gamma, std::size_t n)
{
  TERSE_SCHEDULE_GRID_STRIDE(i, n)
  {
    slowmo_element(parameters[i], momentum[i], outer[i], alpha, beta, gamma);
  }
}

template <class = void>
__global__ void bmuf_kernel(float* parameters, float* global, float* update, const float* start, double eta,
                            double zeta, bool nesterov, std::size_t n)
{
  TERSE_SCHEDULE_GRID_STRIDE(i, n)
  {
    bmuf_element(parameters[i], global[i], update[i], start[i], eta, zeta, nesterov);
  }
}

/// FDA naive state: state[0] from the blocked sum, state[1 + i] = Δ_i.
template <class = void>
__global__ void naive_state_kernel(const float* delta, double* state, std::size_t n)
{
  TERSE_SCHEDULE_GRID_STRIDE(i, n)
  {
    state[i + 1] = static_cast<double>(delta[i]);
  }
}

/// One thread per (chunk, row): that chunk's column sums, in index order,
/// into partials[(row · chunks + chunk) · columns + column] (zeroed before).
template <class = void>
__global__ void sketch_chunks_kernel(const float* values, std::size_t n, std::uint64_t seed, std::uint32_t rows,
                                     std::uint32_t columns, std::size_t chunks, double* partials)
{
  TERSE_SCHEDULE_GRID_STRIDE(t, chunks * rows)
  {
    const auto row = static_cast<std::uint32_t>(t / chunks);
    const std::size_t chunk = t % chunks;
    double* out = partials + (static_cast<std::size_t>(row) * chunks + chunk) * columns;
    const std::size_t begin = chunk * sketch_chunk;
    const std::size_t end = begin + sketch_chunk < n ? begin + sketch_chunk : n;
    for (std::size_t i = begin; i < end; ++i) {
      const sketch_slot slot = ams_sketch_slot(seed, row, columns, i);
      const double v = static_cast<double>(values[i]);
      out[slot.column] = add_rn(out[slot.column], slot.negative ? -v : v);
    }
  }
}

/// One thread per (row, column): the chunk sums added in chunk order, from 0.
template <class = void>
__global__ void sketch_total_kernel(const double* partials, std::uint32_t rows, std::uint32_t columns,
                                    std::size_t chunks, double* sketch)
{
  TERSE_SCHEDULE_GRID_STRIDE(t, std::size_t{rows} * columns)
  {
    const std::size_t row = t / columns;
    const std::size_t column = t % columns;
    sketch[t] = add_partials(partials + row * chunks * columns + column, chunks, columns);
  }
}

#undef TERSE_SCHEDULE_GRID_STRIDE

/// Launches an elementwise kernel over n elements (nothing for n = 0).
template <class Kernel, class... Args>
void launch(Kernel kernel, std::size_t n, cudaStream_t stream, Args... args)
{
  if (n == 0) {
    return;
  }
  kernel<<<grid_for(n), threads, 0, stream>>>(args...);
  TERSE_CUDA_TRY(cudaGetLastError());
}

}  // namespace terse::schedule::detail::device

#pragma once
/// @file
/// The one summation order the schedules use for their monitored sums
/// (norms, inner products, distances) on host and device buffers, so a
/// schedule on device buffers takes the host's decisions bit for bit:
///
///     partial_k = (((0 + t_{kB}) + t_{kB+1}) + ...) + t_{kB+B-1}   (block k, index order)
///     sum       = (((0 + partial_0) + partial_1) + ...)            (blocks in order)
///
/// with B = `reduction_block` terms per block, every term and addition a
/// correctly rounded double operation (never contracted into an fma, which
/// nvcc does by default). A device kernel computes the partials in
/// parallel with `block_partial` and adds them with `add_partials`; the host
/// calls `blocked_sum`, which runs the same two functions.
///
/// The AMS sketch of FDA's sketch estimator accumulates each column in
/// chunks of `sketch_chunk` elements the same way (ams_sketch.hpp).

#include <terse/core/config.hpp>

#include <cstddef>
#include <cstdint>

namespace terse::schedule::detail {

/// Terms per block of the fixed summation order.
inline constexpr std::size_t reduction_block = 256;

/// Blocks of `n` terms.
TERSE_HOST_DEVICE constexpr std::size_t reduction_blocks(std::size_t n) noexcept
{
  return (n + reduction_block - 1) / reduction_block;
}

/// a + b and a * b correctly rounded on both backends.
TERSE_HOST_DEVICE TERSE_FORCEINLINE double add_rn(double a, double b) noexcept
{
#if TERSE_IN_DEVICE_CODE
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
TERSE_HOST_DEVICE TERSE_FORCEINLINE double mul_rn(double a, double b) noexcept
{
#if TERSE_IN_DEVICE_CODE
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

/// Σ term(i) over block `k` of `n` terms, in index order.
template <class Term>
TERSE_HOST_DEVICE TERSE_FORCEINLINE double block_partial(const Term& term, std::size_t k, std::size_t n) noexcept
{
  const std::size_t begin = k * reduction_block;
  const std::size_t end = begin + reduction_block < n ? begin + reduction_block : n;
  double sum = 0.0;
  for (std::size_t i = begin; i < end; ++i) {
    sum = add_rn(sum, term(i));
  }
  return sum;
}

/// Σ partials[k * stride] over k in [0, blocks), in order.
TERSE_HOST_DEVICE TERSE_FORCEINLINE double add_partials(const double* partials, std::size_t blocks,
                                                        std::size_t stride = 1) noexcept
{
  double sum = 0.0;
  for (std::size_t k = 0; k < blocks; ++k) {
    sum = add_rn(sum, partials[k * stride]);
  }
  return sum;
}

/// The host's Σ term(i), i in [0, n), in the fixed blocked order (no
/// scratch: each partial is added as soon as it is known).
template <class Term>
double blocked_sum(const Term& term, std::size_t n) noexcept
{
  double sum = 0.0;
  const std::size_t blocks = reduction_blocks(n);
  for (std::size_t k = 0; k < blocks; ++k) {
    sum = add_rn(sum, block_partial(term, k, n));
  }
  return sum;
}

/// Terms of the sums the schedules monitor, shared by both backends.
/// (double)(a_i − b_i)² with the difference taken in float, as the delta
/// Δ = x − x_last is stored.
struct squared_difference_term {
  const float* a;
  const float* b;
  TERSE_HOST_DEVICE TERSE_FORCEINLINE double operator()(std::size_t i) const noexcept
  {
    const double d = static_cast<double>(a[i] - b[i]);
    return mul_rn(d, d);
  }
};

/// v_i².
template <class Value>
struct square_term {
  const Value* v;
  TERSE_HOST_DEVICE TERSE_FORCEINLINE double operator()(std::size_t i) const noexcept
  {
    const double d = static_cast<double>(v[i]);
    return mul_rn(d, d);
  }
};

/// a_i · b_i (FDA's ξ · Δ).
struct product_term {
  const float* a;
  const float* b;
  TERSE_HOST_DEVICE TERSE_FORCEINLINE double operator()(std::size_t i) const noexcept
  {
    return mul_rn(static_cast<double>(a[i]), static_cast<double>(b[i]));
  }
};

}  // namespace terse::schedule::detail

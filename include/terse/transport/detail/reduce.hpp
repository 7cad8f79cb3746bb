#pragma once
/// @file
/// The element-wise reduction every host transport shares: combine W inputs
/// in rank order in the accumulator type and round once, so results are
/// identical on every rank and equal to a serial reference.

#include <terse/core/error.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/verbs.hpp>

#include <algorithm>
#include <cstddef>
#include <type_traits>

namespace terse::detail {

template <class T>
TERSE_FORCEINLINE accumulator_t<T> widen(T value) noexcept
{
  if constexpr (std::is_same_v<T, fp16> || std::is_same_v<T, bf16>) {
    return static_cast<float>(value);
  } else {
    return value;
  }
}

template <class T>
TERSE_FORCEINLINE T narrow(accumulator_t<T> value) noexcept
{
  if constexpr (std::is_same_v<T, fp16> || std::is_same_v<T, bf16>) {
    return T(value);
  } else {
    return value;
  }
}

/// a + b; integers wrap (as MPI's and NCCL's sums do) instead of
/// overflowing, which would be undefined behaviour for signed types.
template <class A>
TERSE_FORCEINLINE A add(A a, A b) noexcept
{
  if constexpr (std::is_integral_v<A>) {
    using unsigned_t = std::make_unsigned_t<A>;
    return static_cast<A>(static_cast<unsigned_t>(a) + static_cast<unsigned_t>(b));
  } else {
    return a + b;
  }
}

/// Rejects operators that make no sense for T (average of integers).
template <class T>
void check_reduce_op(reduce_op op)
{
  if constexpr (std::is_integral_v<T>) {
    TERSE_EXPECTS(op != reduce_op::average, "average is defined for floating-point types only");
  }
}

/// Elements per tile: small enough that the accumulators stay in L1.
inline constexpr std::size_t reduce_tile = 1024;

/// out[k][i] = op over r of inputs[r][i] for i in [0, count), written into
/// each of `outputs` (any of which may alias an input: each tile is read
/// fully before it is written).
/// @param input_at  callable r -> const T* (rank r's input at this block)
/// @param output_at callable k -> T* (k-th destination at this block)
template <class T, class InputAt, class OutputAt>
void reduce_rank_order(reduce_op op, int ranks, std::size_t count, InputAt input_at, int outputs, OutputAt output_at)
{
  using acc_t = accumulator_t<T>;
  acc_t acc[reduce_tile];
  for (std::size_t start = 0; start < count; start += reduce_tile) {
    const std::size_t len = std::min(reduce_tile, count - start);
    const T* first = input_at(0) + start;
    for (std::size_t i = 0; i < len; ++i) {
      acc[i] = widen(first[i]);
    }
    for (int r = 1; r < ranks; ++r) {
      const T* in = input_at(r) + start;
      switch (op) {
        case reduce_op::sum:
        case reduce_op::average:
          for (std::size_t i = 0; i < len; ++i) {
            acc[i] = add(acc[i], widen(in[i]));
          }
          break;
        case reduce_op::max:
          for (std::size_t i = 0; i < len; ++i) {
            acc[i] = std::max(acc[i], widen(in[i]));
          }
          break;
        case reduce_op::min:
          for (std::size_t i = 0; i < len; ++i) {
            acc[i] = std::min(acc[i], widen(in[i]));
          }
          break;
      }
    }
    if constexpr (!std::is_integral_v<acc_t>) {
      if (op == reduce_op::average) {
        const auto divisor = static_cast<acc_t>(ranks);
        for (std::size_t i = 0; i < len; ++i) {
          acc[i] /= divisor;
        }
      }
    }
    for (int k = 0; k < outputs; ++k) {
      T* out = output_at(k) + start;
      for (std::size_t i = 0; i < len; ++i) {
        out[i] = narrow<T>(acc[i]);
      }
    }
  }
}

}  // namespace terse::detail

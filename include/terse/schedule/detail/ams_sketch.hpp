#pragma once
/// @file
/// The AMS sketch (Alon, Matias, Szegedy 1996) in its count-sketch form, the
/// small linear summary FDA's sketch estimator sends instead of a model:
/// `rows` × `columns` doubles, where row r adds σ_r(i)·v_i into column
/// h_r(i). Hash h_r and sign σ_r come from Philox keyed by a seed every rank
/// shares, so sketches of different vectors add up: the average of the
/// ranks' sketches is the sketch of the average vector.
///
/// Each row's Σ_j S[r][j]² estimates ‖v‖² without bias, with variance at
/// most 2‖v‖⁴/columns; the median over rows makes a large error unlikely:
///
///     P(|M − ‖v‖²| > ε‖v‖²) ≤ δ = P(Binomial(rows, p) ≥ ⌈rows/2⌉),
///     p = min(1, 2 / (columns · ε²))            (Chebyshev per row)
///
/// With ε = √(8/columns) each row fails with p ≤ 1/4; 5 × 250 gives
/// ε ≈ 0.179 and δ ≈ 0.104 (a loose bound: the tests see far fewer misses).

#include <terse/core/config.hpp>
#include <terse/core/philox.hpp>
#include <terse/core/span.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace terse::schedule::detail {

/// Adds the sketch of `values` (float or double) to `sketch` (rows ×
/// columns, row-major). One Philox block gives four elements their column
/// and sign for a row.
template <class Value>
void ams_sketch_add(std::uint64_t seed, std::uint32_t rows, std::uint32_t columns, host_span<const Value> values,
                    host_span<double> sketch) noexcept
{
  const std::size_t n = values.size();
  for (std::uint32_t r = 0; r < rows; ++r) {
    const random_stream stream{seed, 0, r};
    double* row = sketch.data() + static_cast<std::size_t>(r) * columns;
    std::size_t i = 0;
    for (std::uint64_t block = 0; i < n; ++block) {
      const philox_counter bits = stream.block(block);
      for (int w = 0; w < 4 && i < n; ++w, ++i) {
        const std::uint32_t word = bits.word[w];
        // Low 31 bits pick the column (multiply-shift, no modulo bias worth
        // naming), the top bit the sign.
        const auto column = static_cast<std::size_t>((static_cast<std::uint64_t>(word & 0x7FFFFFFFu) * columns) >> 31);
        const double v = static_cast<double>(values[i]);
        row[column] += (word & 0x80000000u) != 0 ? -v : v;
      }
    }
  }
}

/// Elements per chunk of the chunked sketch order.
inline constexpr std::size_t sketch_chunk = 4096;

/// Element i's column (low 31 bits, multiply-shift) and sign (top bit) in
/// one row, from that row's Philox stream: the same on host and device.
struct sketch_slot {
  std::size_t column;
  bool negative;
};
TERSE_HOST_DEVICE TERSE_FORCEINLINE sketch_slot ams_sketch_slot(std::uint64_t seed, std::uint32_t row,
                                                                std::uint32_t columns, std::size_t i) noexcept
{
  const random_stream stream{seed, 0, row};
  const std::uint32_t word = stream.bits(i);
  return {static_cast<std::size_t>((static_cast<std::uint64_t>(word & 0x7FFFFFFFu) * columns) >> 31),
          (word & 0x80000000u) != 0};
}

/// Adds the sketch of `values` to `sketch` like ams_sketch_add, in the
/// fixed order FDA's device path uses too: each column sums its elements
/// chunk by chunk (`sketch_chunk` elements, index order within a chunk,
/// from 0), and adds the chunk sums in chunk order. `chunk_row` holds
/// `columns` zeros and is left so. (Adding a column's zero sum is exact, so
/// only the columns a chunk touched are added.)
template <class Value>
void ams_sketch_add_chunked(std::uint64_t seed, std::uint32_t rows, std::uint32_t columns,
                            host_span<const Value> values, host_span<double> sketch,
                            host_span<double> chunk_row) noexcept
{
  const std::size_t n = values.size();
  for (std::uint32_t r = 0; r < rows; ++r) {
    double* row = sketch.data() + static_cast<std::size_t>(r) * columns;
    for (std::size_t begin = 0; begin < n; begin += sketch_chunk) {
      const std::size_t end = std::min(n, begin + sketch_chunk);
      for (std::size_t i = begin; i < end; ++i) {
        const sketch_slot slot = ams_sketch_slot(seed, r, columns, i);
        const double v = static_cast<double>(values[i]);
        chunk_row[slot.column] += slot.negative ? -v : v;
      }
      for (std::size_t i = begin; i < end; ++i) {
        const std::size_t column = ams_sketch_slot(seed, r, columns, i).column;
        row[column] += chunk_row[column];  // later elements of the same column add an exact 0
        chunk_row[column] = 0.0;
      }
    }
  }
}

/// The estimate of ‖v‖² from the sketch of v: the median over rows of each
/// row's sum of squares. `scratch` holds `rows` doubles.
inline double ams_sketch_squared_norm(host_span<const double> sketch, std::uint32_t rows, std::uint32_t columns,
                                      host_span<double> scratch) noexcept
{
  for (std::uint32_t r = 0; r < rows; ++r) {
    double sum = 0;
    const double* row = sketch.data() + static_cast<std::size_t>(r) * columns;
    for (std::uint32_t j = 0; j < columns; ++j) {
      sum += row[j] * row[j];
    }
    scratch[r] = sum;
  }
  double* first = scratch.data();
  double* last = first + rows;
  double* middle = first + rows / 2;
  std::nth_element(first, middle, last);
  if (rows % 2 == 1) {
    return *middle;
  }
  const double below = *std::max_element(first, middle);
  return 0.5 * (below + *middle);
}

/// The relative error ε at which one row fails with probability at most 1/4.
inline double ams_sketch_epsilon(std::uint32_t columns) noexcept
{
  return std::sqrt(8.0 / static_cast<double>(columns));
}

/// δ: an upper bound on P(|median estimate − ‖v‖²| > ε‖v‖²), from
/// Chebyshev per row and a binomial tail over the rows.
inline double ams_sketch_failure_bound(std::uint32_t rows, std::uint32_t columns, double epsilon) noexcept
{
  const double p = std::min(1.0, 2.0 / (static_cast<double>(columns) * epsilon * epsilon));
  const std::uint32_t need = (rows + 1) / 2;
  double tail = 0;
  for (std::uint32_t k = need; k <= rows; ++k) {
    double choose = 1;
    for (std::uint32_t j = 1; j <= k; ++j) {
      choose = choose * static_cast<double>(rows - k + j) / static_cast<double>(j);
    }
    tail += choose * std::pow(p, k) * std::pow(1.0 - p, rows - k);
  }
  return std::min(1.0, tail);
}

}  // namespace terse::schedule::detail

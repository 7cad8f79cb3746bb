#pragma once
/// @file
/// `terse::tensor_shape`: what a trainer declares about one tensor of the
/// flat buffer, a matrix (rows × cols, row-major) or a vector (1-D: biases,
/// norm scales). Codecs that work on matrices (PowerSGD) compress each
/// matrix with its own shape and send vectors dense.

#include <terse/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <ostream>

namespace terse {

/// Build one with tensor_shape::matrix(rows, cols) or tensor_shape::vector(n).
/// A matrix needs rows ≥ 1 and cols ≥ 1 (layout::set_shapes checks it).
struct tensor_shape {
  std::uint64_t rows = 0;  ///< a vector's length
  std::uint64_t cols = 1;  ///< 1 for a vector
  std::uint8_t dims = 1;   ///< 1: vector, 2: matrix

  static constexpr tensor_shape matrix(std::uint64_t rows, std::uint64_t cols) noexcept { return {rows, cols, 2}; }
  static constexpr tensor_shape vector(std::uint64_t length) noexcept { return {length, 1, 1}; }

  TERSE_HOST_DEVICE constexpr bool is_matrix() const noexcept { return dims == 2; }
  /// Elements the tensor holds.
  TERSE_HOST_DEVICE constexpr std::uint64_t count() const noexcept { return rows * cols; }

  friend constexpr bool operator==(const tensor_shape&, const tensor_shape&) = default;
  friend std::ostream& operator<<(std::ostream& os, const tensor_shape& s)
  {
    return s.is_matrix() ? os << s.rows << "x" << s.cols : os << "[" << s.rows << "]";
  }
};

}  // namespace terse

#pragma once
/// @file
/// PowerSGD's host building blocks: one scan for NaN/Inf and the largest
/// magnitude, the matrix products through BLAS (with the partial last row of
/// the bucket handled beside them, so M is never copied), the column
/// normalisation of the warm-start Q, and the Gram–Schmidt that makes P's
/// columns orthonormal. All deterministic: the same inputs give the same
/// bits on every rank.

#include <terse/compress/detail/powersgd_math.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace terse::detail {

/// The largest |value| as float bits (sign cleared): the values are all
/// finite exactly when this is below 0x7f800000. One read pass.
inline std::uint32_t max_magnitude_bits(const float* values, std::size_t n) noexcept
{
  // Signed compare on words whose top bit is clear: vectorises on SSE2.
  std::int32_t largest = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto magnitude = static_cast<std::int32_t>(float_bits(values[i]) & 0x7fffffffu);
    largest = magnitude > largest ? magnitude : largest;
  }
  return static_cast<std::uint32_t>(largest);
}

inline constexpr std::uint32_t first_non_finite_bits = 0x7f800000u;

/// max over rows of the Euclidean norm of a row-major rows×k matrix, in
/// double (cannot overflow for float inputs).
inline double max_row_norm(const float* matrix, std::size_t rows, std::size_t k) noexcept
{
  double largest = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    double sum = 0;
    for (std::size_t c = 0; c < k; ++c) {
      const double x = matrix[i * k + c];
      sum += x * x;
    }
    largest = std::max(largest, sum);
  }
  return std::sqrt(largest);
}

/// max over j of ‖Q_j‖₂, the norm of row j of Q, for Q stored transposed
/// (`qt`, k×p row-major: column c of Q is row c of qt), in double.
inline double max_q_row_norm(const float* qt, std::size_t k, std::size_t p) noexcept
{
  double largest = 0;
  for (std::size_t j = 0; j < p; ++j) {
    double sum = 0;
    for (std::size_t c = 0; c < k; ++c) {
      const double x = qt[c * p + j];
      sum += x * x;
    }
    largest = std::max(largest, sum);
  }
  return std::sqrt(largest);
}

/// q_hat = Q with each column scaled to unit length (in double); both are
/// stored transposed (k×p row-major), so a column is a contiguous row. A
/// zero column (the bucket's last step had a dependent or zero direction)
/// is first re-drawn from the shared stream, so every rank re-draws the
/// same numbers. Scaling Q's columns does not change the orthonormalised P
/// (Gram–Schmidt ignores positive column scales) but keeps P = M·Q̂ at the
/// size of M, not M².
/// `seed_at` is where this Q's numbers start in the shared stream (tensors
/// of one segment draw disjoint ranges).
inline void normalise_columns(const float* qt, float* q_hat, std::size_t p, std::size_t k, const random_stream& shared,
                              std::uint64_t seed_at = 0)
{
  for (std::size_t c = 0; c < k; ++c) {
    const float* from = qt + c * p;
    float* to = q_hat + c * p;
    double sum = 0;
    for (std::size_t j = 0; j < p; ++j) {
      sum += static_cast<double>(from[j]) * from[j];
    }
    if (sum == 0) {
      for (std::size_t j = 0; j < p; ++j) {
        to[j] = powersgd_seed_value(shared, seed_at + c * p + j);
        sum += static_cast<double>(to[j]) * to[j];
      }
      if (sum == 0) {  // p tiny and every draw exactly zero: any unit vector will do
        to[c % p] = 1.0f;
        sum = 1;
      }
    } else {
      std::copy(from, from + p, to);
    }
    const double norm = std::sqrt(sum);
    for (std::size_t j = 0; j < p; ++j) {
      to[j] = static_cast<float>(to[j] / norm);
    }
  }
}

/// Makes the k columns of the row-major m×k matrix `p` orthonormal in place
/// by modified Gram–Schmidt in double, with a second projection pass
/// ("twice is enough") so nearly dependent columns stay orthogonal. A column
/// that is zero, or dependent on the earlier ones to within
/// powersgd_dependent_tolerance of its length, becomes zero. `work` holds
/// m·k doubles. Returns false (leaving `p` as it was) when `p` holds NaN or
/// Inf.
inline bool orthonormalise_columns(float* p, std::size_t m, std::size_t k, double* work)
{
  if (max_magnitude_bits(p, m * k) >= first_non_finite_bits) {
    return false;
  }
  for (std::size_t i = 0; i < m * k; ++i) {
    work[i] = p[i];
  }
  const auto column_norm = [&](std::size_t c) {
    double sum = 0;
    for (std::size_t i = 0; i < m; ++i) {
      sum += work[i * k + c] * work[i * k + c];
    }
    return std::sqrt(sum);
  };
  for (std::size_t c = 0; c < k; ++c) {
    const double original = column_norm(c);
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t d = 0; d < c; ++d) {
        double dot = 0;
        for (std::size_t i = 0; i < m; ++i) {
          dot += work[i * k + d] * work[i * k + c];
        }
        if (dot != 0) {
          for (std::size_t i = 0; i < m; ++i) {
            work[i * k + c] -= dot * work[i * k + d];
          }
        }
      }
    }
    const double norm = column_norm(c);
    const bool independent = norm > powersgd_dependent_tolerance * original;  // false for a zero column
    for (std::size_t i = 0; i < m; ++i) {
      work[i * k + c] = independent ? work[i * k + c] / norm : 0.0;
    }
  }
  for (std::size_t i = 0; i < m * k; ++i) {
    p[i] = static_cast<float>(work[i]);
  }
  return true;
}

/// The products run over blocks of rows of M of about 128 KiB: OpenBLAS is
/// 2-3 times faster on such narrow (k-wide) products when the block stays
/// in cache than on the whole matrix at once, and powersgd_multiply_p scans
/// each block for NaN/Inf while it is in cache.
inline constexpr std::size_t powersgd_block_floats = std::size_t{1} << 15;

inline std::size_t powersgd_block_rows(const powersgd_shape& s) noexcept
{
  return std::max<std::size_t>(1, powersgd_block_floats / s.p);
}

/// P (m×k) = M·Q̂, M the bucket `values` viewed as in powersgd_shape and Q̂
/// stored transposed (k×p). Each block of rows is scanned for NaN/Inf and
/// its largest magnitude just before the product reads it, so one pass over
/// M does both. Returns max_magnitude_bits of all n values.
template <class Blas>
std::uint32_t powersgd_multiply_p(const float* values, const powersgd_shape& s, const float* q_hat, float* p)
{
  const std::size_t rows = powersgd_block_rows(s);
  std::uint32_t largest = 0;
  for (std::size_t first = 0; first < s.full_rows; first += rows) {
    const std::size_t count = std::min<std::size_t>(rows, s.full_rows - first);
    const float* block = values + first * s.p;
    largest = std::max(largest, max_magnitude_bits(block, count * s.p));
    Blas::gemm(false, true, count, s.k, s.p, 1.0f, block, s.p, q_hat, s.p, 0.0f, p + first * s.k, s.k);
  }
  if (s.tail != 0) {  // the partial last row, zero-padded
    const float* row = values + s.full_rows * s.p;
    largest = std::max(largest, max_magnitude_bits(row, s.tail));
    for (std::size_t c = 0; c < s.k; ++c) {
      double sum = 0;
      for (std::size_t j = 0; j < s.tail; ++j) {
        sum += static_cast<double>(row[j]) * q_hat[c * s.p + j];
      }
      p[s.full_rows * s.k + c] = static_cast<float>(sum);
    }
  }
  return largest;
}

/// Q = Mᵀ·P̂, stored transposed: qt (k×p) = P̂ᵀ·M, accumulated block by block.
template <class Blas>
void powersgd_multiply_q(const float* values, const powersgd_shape& s, const float* p_hat, float* qt)
{
  const std::size_t rows = powersgd_block_rows(s);
  for (std::size_t first = 0; first < s.full_rows; first += rows) {
    const std::size_t count = std::min<std::size_t>(rows, s.full_rows - first);
    Blas::gemm(true, false, s.k, s.p, count, 1.0f, p_hat + first * s.k, s.k, values + first * s.p, s.p,
               first == 0 ? 0.0f : 1.0f, qt, s.p);
  }
  if (s.tail != 0) {
    const float* row = values + s.full_rows * s.p;
    const float* last = p_hat + s.full_rows * s.k;
    for (std::size_t c = 0; c < s.k; ++c) {
      for (std::size_t j = 0; j < s.tail; ++j) {
        qt[c * s.p + j] += last[c] * row[j];
      }
    }
  }
}

/// out = P·Qᵀ (beta = 0) or out += P·Qᵀ (beta = 1), Q given transposed
/// (k×p), reshaped to the n values of the bucket (the padding of the last
/// row is never written).
template <class Blas>
void powersgd_multiply_out(const float* p, const float* qt, const powersgd_shape& s, float beta, float* out)
{
  const std::size_t rows = powersgd_block_rows(s);
  for (std::size_t first = 0; first < s.full_rows; first += rows) {
    const std::size_t count = std::min<std::size_t>(rows, s.full_rows - first);
    Blas::gemm(false, false, count, s.p, s.k, 1.0f, p + first * s.k, s.k, qt, s.p, beta, out + first * s.p, s.p);
  }
  if (s.tail != 0) {
    float* row = out + s.full_rows * s.p;
    const float* last = p + s.full_rows * s.k;
    for (std::size_t j = 0; j < s.tail; ++j) {
      double sum = 0;
      for (std::size_t c = 0; c < s.k; ++c) {
        sum += static_cast<double>(last[c]) * qt[c * s.p + j];
      }
      row[j] = beta == 0.0f ? static_cast<float>(sum) : row[j] + static_cast<float>(sum);
    }
  }
}

}  // namespace terse::detail

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

/// q_hat = Q with each column scaled to unit length (in double). A zero
/// column (a fresh bucket's rank-deficient past) is first re-drawn from the
/// shared stream, so every rank re-draws the same numbers. Scaling Q's
/// columns does not change the orthonormalised P (Gram–Schmidt ignores
/// positive column scales) but keeps P = M·Q̂ at the size of M, not M².
inline void normalise_columns(const float* q, float* q_hat, std::size_t p, std::size_t k, const random_stream& shared)
{
  for (std::size_t c = 0; c < k; ++c) {
    double sum = 0;
    for (std::size_t j = 0; j < p; ++j) {
      const double x = q[j * k + c];
      sum += x * x;
    }
    if (sum == 0) {
      for (std::size_t j = 0; j < p; ++j) {
        const float x = powersgd_seed_value(shared, j * k + c);
        q_hat[j * k + c] = x;
        sum += static_cast<double>(x) * x;
      }
      if (sum == 0) {  // p tiny and every draw exactly zero: any unit vector will do
        q_hat[c % p * k + c] = 1.0f;
        sum = 1;
      }
    } else {
      for (std::size_t j = 0; j < p; ++j) {
        q_hat[j * k + c] = q[j * k + c];
      }
    }
    const double norm = std::sqrt(sum);
    for (std::size_t j = 0; j < p; ++j) {
      q_hat[j * k + c] = static_cast<float>(q_hat[j * k + c] / norm);
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

/// P (m×k) = M·Q̂, M the bucket `values` viewed as in powersgd_shape.
template <class Blas>
void powersgd_multiply_p(const float* values, const powersgd_shape& s, const float* q_hat, float* p)
{
  Blas::gemm(false, false, s.full_rows, s.k, s.p, 1.0f, values, s.p, q_hat, s.k, 0.0f, p, s.k);
  if (s.tail != 0) {  // the partial last row, zero-padded
    const float* row = values + s.full_rows * s.p;
    for (std::size_t c = 0; c < s.k; ++c) {
      double sum = 0;
      for (std::size_t j = 0; j < s.tail; ++j) {
        sum += static_cast<double>(row[j]) * q_hat[j * s.k + c];
      }
      p[s.full_rows * s.k + c] = static_cast<float>(sum);
    }
  }
}

/// Q (p×k) = Mᵀ·P̂.
template <class Blas>
void powersgd_multiply_q(const float* values, const powersgd_shape& s, const float* p_hat, float* q)
{
  Blas::gemm(true, false, s.p, s.k, s.full_rows, 1.0f, values, s.p, p_hat, s.k, 0.0f, q, s.k);
  if (s.tail != 0) {
    const float* row = values + s.full_rows * s.p;
    const float* last = p_hat + s.full_rows * s.k;
    for (std::size_t j = 0; j < s.tail; ++j) {
      for (std::size_t c = 0; c < s.k; ++c) {
        q[j * s.k + c] += row[j] * last[c];
      }
    }
  }
}

/// out = P·Qᵀ (beta = 0) or out += P·Qᵀ (beta = 1), reshaped to the n
/// values of the bucket (the padding of the last row is never written).
template <class Blas>
void powersgd_multiply_out(const float* p, const float* q, const powersgd_shape& s, float beta, float* out)
{
  Blas::gemm(false, true, s.full_rows, s.p, s.k, 1.0f, p, s.k, q, s.k, beta, out, s.p);
  if (s.tail != 0) {
    float* row = out + s.full_rows * s.p;
    const float* last = p + s.full_rows * s.k;
    for (std::size_t j = 0; j < s.tail; ++j) {
      double sum = 0;
      for (std::size_t c = 0; c < s.k; ++c) {
        sum += static_cast<double>(last[c]) * q[j * s.k + c];
      }
      row[j] = beta == 0.0f ? static_cast<float>(sum) : row[j] + static_cast<float>(sum);
    }
  }
}

}  // namespace terse::detail

#pragma once
/// @file
/// |lambda_2| of an irreducible stochastic matrix that need not be
/// symmetric (push-sum and row-stochastic graphs): remove the Perron
/// eigenvalue with its spectral projector, then measure the spectral radius
/// of what is left by a long power iteration.

#include <terse/topology/detail/spectral.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace terse::topology::detail {

/// x with (A - I) x = 0 and sum(x) = 1, for A with a simple eigenvalue 1
/// (one equation of the singular system is replaced by the normalisation).
inline std::vector<double> fixed_vector(const dense_matrix& a)
{
  const std::size_t n = a.size();
  dense_matrix b(n, std::vector<double>(n + 1, 0.0));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      b[i][j] = a[i][j] - (i == j ? 1.0 : 0.0);
    }
  }
  std::fill(b[n - 1].begin(), b[n - 1].end(), 1.0);
  for (std::size_t col = 0; col < n; ++col) {
    std::size_t pivot = col;
    for (std::size_t i = col + 1; i < n; ++i) {
      if (std::abs(b[i][col]) > std::abs(b[pivot][col])) {
        pivot = i;
      }
    }
    std::swap(b[col], b[pivot]);
    for (std::size_t i = col + 1; i < n; ++i) {
      const double f = b[i][col] / b[col][col];
      for (std::size_t j = col; j <= n; ++j) {
        b[i][j] -= f * b[col][j];
      }
    }
  }
  std::vector<double> x(n);
  for (std::size_t i = n; i-- > 0;) {
    double sum = b[i][n];
    for (std::size_t j = i + 1; j < n; ++j) {
      sum -= b[i][j] * x[j];
    }
    x[i] = sum / b[i][i];
  }
  return x;
}

/// The left Perron vector pi (pi^T M = pi^T, sum 1) of M.
inline std::vector<double> left_perron_vector(const dense_matrix& m)
{
  dense_matrix t(m.size(), std::vector<double>(m.size()));
  for (std::size_t i = 0; i < m.size(); ++i) {
    for (std::size_t j = 0; j < m.size(); ++j) {
      t[i][j] = m[j][i];
    }
  }
  return fixed_vector(t);
}

/// |lambda_2| of an irreducible row- or column-stochastic M: the spectral
/// radius of M - v u^T (v, u the right and left Perron vectors, u^T v = 1),
/// as the geometric mean growth of ||A^k x|| over a long window (complex
/// pairs make single ratios oscillate; the mean does not).
inline double second_eigenvalue_modulus(const dense_matrix& m)
{
  const std::size_t n = m.size();
  if (n <= 1) {
    return 0.0;
  }
  const std::vector<double> v = fixed_vector(m);
  const std::vector<double> u = left_perron_vector(m);
  double uv = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    uv += u[i] * v[i];
  }
  dense_matrix a = m;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      a[i][j] -= v[i] * u[j] / uv;
    }
  }
  std::vector<double> x(n), y(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = std::sin(1.0 + 2.7 * static_cast<double>(i));  // generic: not orthogonal to any eigenvector
  }
  constexpr int warmup = 4000;
  constexpr int window = 16000;
  double log_growth = 0.0;
  for (int k = 0; k < warmup + window; ++k) {
    double norm = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      double sum = 0.0;
      for (std::size_t j = 0; j < n; ++j) {
        sum += a[i][j] * x[j];
      }
      y[i] = sum;
      norm += sum * sum;
    }
    norm = std::sqrt(norm);
    if (!(norm > 1e-300)) {
      return 0.0;  // nilpotent remainder: every other eigenvalue is 0
    }
    if (k >= warmup) {
      log_growth += std::log(norm);
    }
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = y[i] / norm;
    }
  }
  return std::exp(log_growth / window);
}

}  // namespace terse::topology::detail

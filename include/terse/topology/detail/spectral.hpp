#pragma once
/// @file
/// Small dense linear algebra for rho and its tests: cyclic Jacobi for
/// symmetric eigenvalues, the spectral norm, and |lambda_2| of a stochastic
/// matrix. Meant for W up to a few hundred (O(W^3)); rho is computed once.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace terse::topology::detail {

using dense_matrix = std::vector<std::vector<double>>;

inline dense_matrix multiply(const dense_matrix& a, const dense_matrix& b)
{
  const std::size_t n = a.size();
  dense_matrix c(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < n; ++k) {
      const double aik = a[i][k];
      if (aik != 0.0) {
        for (std::size_t j = 0; j < n; ++j) {
          c[i][j] += aik * b[k][j];
        }
      }
    }
  }
  return c;
}

/// The eigenvalues of a symmetric matrix, by cyclic Jacobi rotations
/// (accurate to a few ulps of the norm; quadratic convergence in sweeps).
inline std::vector<double> symmetric_eigenvalues(dense_matrix a)
{
  const std::size_t n = a.size();
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        total += a[i][j] * a[i][j];
        off += i != j ? a[i][j] * a[i][j] : 0.0;
      }
    }
    if (off <= 1e-30 * total || off == 0.0) {
      break;
    }
    for (std::size_t p = 0; p + 1 < n; ++p) {
      for (std::size_t q = p + 1; q < n; ++q) {
        if (a[p][q] == 0.0) {
          continue;
        }
        // The rotation that zeroes a[p][q] (Golub & Van Loan, Alg. 8.5.1).
        const double theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
        const double t = std::copysign(1.0, theta) / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0);
        const double s = t * c;
        for (std::size_t k = 0; k < n; ++k) {
          const double akp = a[k][p];
          const double akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < n; ++k) {
          const double apk = a[p][k];
          const double aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
      }
    }
  }
  std::vector<double> values(n);
  for (std::size_t i = 0; i < n; ++i) {
    values[i] = a[i][i];
  }
  std::sort(values.begin(), values.end());
  return values;
}

/// ||A||_2, the largest singular value: max |lambda| for symmetric A (more
/// accurate), else sqrt(lambda_max(A^T A)).
inline double spectral_norm(const dense_matrix& a)
{
  const std::size_t n = a.size();
  if (n == 0) {
    return 0.0;
  }
  bool symmetric = true;
  for (std::size_t i = 0; i < n && symmetric; ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      symmetric = symmetric && a[i][j] == a[j][i];
    }
  }
  if (symmetric) {
    const std::vector<double> values = symmetric_eigenvalues(a);
    return std::max(std::abs(values.front()), std::abs(values.back()));
  }
  dense_matrix gram(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j <= i; ++j) {
      double sum = 0.0;
      for (std::size_t k = 0; k < n; ++k) {
        sum += a[k][i] * a[k][j];
      }
      gram[i][j] = gram[j][i] = sum;
    }
  }
  return std::sqrt(std::max(0.0, symmetric_eigenvalues(std::move(gram)).back()));
}

/// ||M - J||_2 with J = 11^T / W.
inline double distance_from_average(dense_matrix m)
{
  const double j = 1.0 / static_cast<double>(m.size());
  for (auto& row : m) {
    for (double& v : row) {
      v -= j;
    }
  }
  return spectral_norm(m);
}

}  // namespace terse::topology::detail

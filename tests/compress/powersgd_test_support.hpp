#pragma once
// Helpers for the PowerSGD tests: matrices with a known structure (exact
// rank r, known singular values), norms in double, and two small transports
// (one rank alone; a recorder that keeps what each allreduce returned).

#include <terse/compress/powersgd.hpp>
#include <terse/core/philox.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/verbs.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace powersgd_test {

/// Standard-normal-ish numbers (sum of four uniforms), deterministic.
inline std::vector<double> noise(std::size_t n, std::uint64_t seed)
{
  const terse::random_stream s{.seed = seed, .step = 7, .stream = 3};
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto b = s.block(i);
    double sum = 0;
    for (std::uint32_t w : b.word) {
      sum += terse::uniform_float(w);
    }
    v[i] = (sum - 2.0) * 1.7320508075688772;
  }
  return v;
}

/// `cols` orthonormal columns of length `rows` (row-major rows×cols), by
/// Gram–Schmidt on noise.
inline std::vector<double> orthonormal(std::size_t rows, std::size_t cols, std::uint64_t seed)
{
  std::vector<double> a = noise(rows * cols, seed);
  for (std::size_t c = 0; c < cols; ++c) {
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t d = 0; d < c; ++d) {
        double dot = 0;
        for (std::size_t i = 0; i < rows; ++i) {
          dot += a[i * cols + d] * a[i * cols + c];
        }
        for (std::size_t i = 0; i < rows; ++i) {
          a[i * cols + c] -= dot * a[i * cols + d];
        }
      }
    }
    double norm = 0;
    for (std::size_t i = 0; i < rows; ++i) {
      norm += a[i * cols + c] * a[i * cols + c];
    }
    norm = std::sqrt(norm);
    for (std::size_t i = 0; i < rows; ++i) {
      a[i * cols + c] /= norm;
    }
  }
  return a;
}

/// The n values of the m×p matrix U·diag(sigma)·Vᵀ (U, V orthonormal),
/// laid out as PowerSGD views a bucket of n = m·p values.
inline std::vector<float> with_spectrum(std::size_t m, std::size_t p, const std::vector<double>& sigma,
                                        std::uint64_t seed)
{
  const std::size_t r = sigma.size();
  const auto u = orthonormal(m, r, seed);
  const auto v = orthonormal(p, r, seed + 1000);
  std::vector<float> out(m * p);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < p; ++j) {
      double sum = 0;
      for (std::size_t c = 0; c < r; ++c) {
        sum += u[i * r + c] * sigma[c] * v[j * r + c];
      }
      out[i * p + j] = static_cast<float>(sum);
    }
  }
  return out;
}

/// A rank-r matrix A·Bᵀ (m×p) with random factors.
inline std::vector<float> low_rank(std::size_t m, std::size_t p, std::size_t r, std::uint64_t seed)
{
  const auto a = noise(m * r, seed);
  const auto b = noise(p * r, seed + 1);
  std::vector<float> out(m * p);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < p; ++j) {
      double sum = 0;
      for (std::size_t c = 0; c < r; ++c) {
        sum += a[i * r + c] * b[j * r + c];
      }
      out[i * p + j] = static_cast<float>(sum);
    }
  }
  return out;
}

inline double norm(const std::vector<float>& x)
{
  double sum = 0;
  for (float v : x) {
    sum += static_cast<double>(v) * v;
  }
  return std::sqrt(sum);
}

/// ‖a − b‖ / ‖b‖ (or ‖a − b‖ when b is zero).
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b)
{
  double diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    diff += d * d;
  }
  const double scale = norm(b);
  return scale == 0 ? std::sqrt(diff) : std::sqrt(diff) / scale;
}

/// max |PᵀP − I| over the columns of the row-major m×k matrix that are not
/// zero (a zero column is the documented answer for a dependent one).
inline double orthonormality_error(const float* p, std::size_t m, std::size_t k)
{
  double worst = 0;
  for (std::size_t c = 0; c < k; ++c) {
    for (std::size_t d = 0; d < k; ++d) {
      double dot = 0;
      for (std::size_t i = 0; i < m; ++i) {
        dot += static_cast<double>(p[i * k + c]) * p[i * k + d];
      }
      worst = std::max(worst, std::abs(dot - (c == d ? 1.0 : 0.0)));
    }
  }
  return worst;
}

/// One rank alone: averaging over one rank changes nothing. The serial
/// reference for "the same algorithm on the average matrix".
struct solo_transport {
  int rank() const { return 0; }
  int size() const { return 1; }
  template <class T, terse::memory_space S>
  void allreduce(terse::span<T, S>, terse::reduce_op)
  {
    ++calls;
  }
  int calls = 0;
};

/// Forwards to another transport and keeps a copy of what every allreduce
/// returned.
template <class Inner>
struct recording_transport {
  Inner* inner;
  std::vector<std::vector<float>> results;
  int rank() const { return inner->rank(); }
  int size() const { return inner->size(); }
  void allreduce(terse::host_span<float> buffer, terse::reduce_op op)
  {
    inner->allreduce(buffer, op);
    results.emplace_back(buffer.begin(), buffer.end());
  }
};

template <class Codec>
std::string saved(const Codec& codec)
{
  std::stringstream blob;
  terse::state_writer out(blob);
  codec.save(out);
  return blob.str();
}

template <class Codec>
void restore(Codec& codec, const std::string& blob)
{
  std::stringstream in(blob);
  terse::state_reader reader(in);
  codec.load(reader);
}

}  // namespace powersgd_test

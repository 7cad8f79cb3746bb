#pragma once
// Reproducible draws for the study (data order, partitions, initial
// weights) from terse's counter-based Philox: every draw is a pure function
// of (seed, purpose, index), so the same seed gives the same run.

#include <terse/core/philox.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <utility>
#include <vector>

namespace study {

/// What a stream of draws is for; keeps the streams of one seed apart.
enum class purpose : std::uint32_t { partition = 1, shuffle = 2, weights = 3 };

/// A sequence of draws: stream (purpose, sub) of `seed`, read in order.
class draws {
 public:
  draws(std::uint64_t seed, purpose what, std::uint32_t sub = 0) : stream_{seed, static_cast<std::uint32_t>(what), sub}
  {
  }

  std::uint32_t bits() noexcept { return stream_.bits(next_++); }

  /// Uniform in (0, 1), never 0 (safe for logarithms).
  double uniform() noexcept
  {
    const std::uint64_t hi = bits();
    const std::uint64_t lo = bits();
    return (static_cast<double>((hi << 21) ^ (lo >> 11)) + 0.5) * 0x1p-53;
  }

  /// Uniform integer in [0, n), n > 0 (Lemire's multiply, bias < n / 2^32).
  std::size_t below(std::size_t n) noexcept
  {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(bits()) * n) >> 32);
  }

  /// Standard normal (Box-Muller).
  double normal() noexcept
  {
    const double u = uniform();
    const double v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * std::numbers::pi * v);
  }

  /// Gamma(shape, 1): Marsaglia and Tsang (2000) for shape >= 1, and
  /// Gamma(shape + 1) * U^(1/shape) below 1.
  double gamma(double shape) noexcept
  {
    if (shape < 1.0) {
      return gamma(shape + 1.0) * std::pow(uniform(), 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = 0;
      double v = 0;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = uniform();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) {
        return d * v;
      }
    }
  }

  /// Fisher-Yates shuffle.
  template <class T>
  void shuffle(std::vector<T>& items) noexcept
  {
    for (std::size_t i = items.size(); i > 1; --i) {
      std::swap(items[i - 1], items[below(i)]);
    }
  }

 private:
  terse::random_stream stream_;
  std::uint64_t next_ = 0;
};

}  // namespace study

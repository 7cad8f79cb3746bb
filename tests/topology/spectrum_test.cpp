// rho against closed forms, the consensus contraction it promises, and the
// eigen-solvers behind it.
#include <terse/topology.hpp>
#include <terse/topology/detail/perron.hpp>
#include <terse/topology/detail/spectral.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

#include "topology_checks.hpp"

namespace {

namespace tp = terse::topology;
namespace td = terse::topology::detail;
using topology_checks::matrix;

double ring_rho(int w)
{
  return (1.0 + 2.0 * std::cos(2.0 * std::numbers::pi / w)) / 3.0;
}

/// ||X - 1 xbar^T||_F
double disagreement(const matrix& x)
{
  double total = 0.0;
  for (std::size_t c = 0; c < x[0].size(); ++c) {
    double mean = 0.0;
    for (const auto& row : x) {
      mean += row[c] / static_cast<double>(x.size());
    }
    for (const auto& row : x) {
      total += (row[c] - mean) * (row[c] - mean);
    }
  }
  return std::sqrt(total);
}

}  // namespace

TEST_CASE("ring rho is (1 + 2 cos(2 pi / W)) / 3")
{
  CHECK(std::abs(tp::ring(16).rho() - 0.94925) <= 1e-5);
  for (int w : {3, 4, 5, 7, 8, 12, 16, 25, 33, 64}) {
    CAPTURE(w);
    CHECK(std::abs(tp::ring(w).rho() - ring_rho(w)) <= 1e-9);
  }
}

TEST_CASE("static exponential rho is 1 - 2 / (1 + ceil(log2 W)) for even W")
{
  CHECK(std::abs(tp::exponential(16).rho() - 0.6) <= 1e-12);
  // It holds for every even W up to 64 (checked; odd W differ).
  for (int w = 2; w <= 64; w += 2) {
    CAPTURE(w);
    const double tau = std::bit_width(static_cast<unsigned>(w - 1));
    CHECK(std::abs(tp::exponential(w).rho() - (1.0 - 2.0 / (1.0 + tau))) <= 1e-9);
  }
}

TEST_CASE("torus, hypercube, complete and exact schedules")
{
  CHECK(std::abs(tp::torus(4, 4).rho() - 0.6) <= 1e-12);
  CHECK(std::abs(tp::hypercube(16).rho() - 0.6) <= 1e-12);  // 1 - 2/(d+1), d = 4
  CHECK(tp::complete(10).rho() <= 1e-15);
  CHECK(tp::one_peer_exact(12).rho() == 0.0);
  CHECK(tp::one_peer_exponential(32).rho() == 0.0);
  CHECK(tp::one_peer_exponential(6).rho() > 0.1);
  CHECK(tp::ring(1).rho() == 0.0);
  const tp::graph ring = tp::ring(10);
  CHECK(ring.rho() == ring.rho());  // cached, and stable
}

TEST_CASE("consensus contracts by rho per round: ||X_t - 1 xbar^T||_F <= rho^t ||X_0 - 1 xbar^T||_F")
{
  topology_checks::uniform_source random(3);
  for (const tp::graph& g :
       {tp::ring(12), tp::torus(4, 5), tp::exponential(16), tp::exponential(12), tp::hypercube(32)}) {
    CAPTURE(g.name());
    CAPTURE(g.world());
    const matrix m = g.round(0).dense();
    const double rho = g.rho();
    CHECK(rho < 1.0);
    matrix x(static_cast<std::size_t>(g.world()), std::vector<double>(5));
    for (auto& row : x) {
      for (double& v : row) {
        v = random() * 2.0 - 1.0;
      }
    }
    const double start = disagreement(x);
    for (int t = 1; t <= 60; ++t) {
      x = topology_checks::apply(m, x);
      CHECK(disagreement(x) <= std::pow(rho, t) * start + 1e-12);
    }
  }
}

TEST_CASE("Jacobi recovers the ring's spectrum, the norm of a non-symmetric matrix")
{
  for (int w : {5, 8, 13}) {
    std::vector<double> values = td::symmetric_eigenvalues(tp::ring(w).round(0).dense());
    std::vector<double> expected;
    for (int k = 0; k < w; ++k) {
      expected.push_back((1.0 + 2.0 * std::cos(2.0 * std::numbers::pi * k / w)) / 3.0);
    }
    std::sort(expected.begin(), expected.end());
    for (std::size_t i = 0; i < values.size(); ++i) {
      CHECK(std::abs(values[i] - expected[i]) <= 1e-13);
    }
  }
  // [[0, 2], [0, 0]] has both eigenvalues 0 but norm 2
  CHECK(std::abs(td::spectral_norm(matrix{{0.0, 2.0}, {0.0, 0.0}}) - 2.0) <= 1e-15);
  CHECK(std::abs(td::spectral_norm(matrix{{3.0, 0.0}, {4.0, 0.0}}) - 5.0) <= 1e-14);
}

TEST_CASE("|lambda_2| of a directed push-sum graph and of symmetric graphs")
{
  std::vector<std::pair<int, int>> arcs;
  for (int i = 0; i < 8; ++i) {
    arcs.emplace_back(i, (i + 1) % 8);
    if (i % 2 == 0) {
      arcs.emplace_back(i, (i + 3) % 8);
    }
  }
  const double lambda2 = td::second_eigenvalue_modulus(tp::directed(8, arcs).round(0).dense());
  CHECK(std::abs(lambda2 - 0.749) < 5e-4);  // 0.74940...
  const double row = td::second_eigenvalue_modulus(tp::directed(8, arcs, tp::stochasticity::row).round(0).dense());
  CHECK(row < 1.0);
  for (int w : {6, 9, 16}) {
    CHECK(std::abs(td::second_eigenvalue_modulus(tp::ring(w).round(0).dense()) - tp::ring(w).rho()) <= 1e-6);
  }
  CHECK(td::second_eigenvalue_modulus(tp::complete(5).round(0).dense()) <= 1e-12);
}

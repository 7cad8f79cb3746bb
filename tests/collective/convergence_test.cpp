// Error feedback makes compressed SGD converge where dense SGD does, on a
// strongly convex quadratic split across ranks. When every rank holds the
// same objective, EF converges linearly to the exact optimum. When the
// ranks' objectives differ, each rank's gradient stays large at the optimum,
// so per-rank EF reaches a neighbourhood of size O(step size) (a known
// property of distributed EF): with a decaying step it converges, while
// the same compressor without feedback stalls.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/sign.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/residual.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

namespace {

constexpr int world = 4;
constexpr std::size_t dim = 512;

// Rank r's objective: 1/2 sum_i a_ri (x_i - c_ri)^2 with a_ri in [0.5, 1.5]:
// the global optimum is x_i* = sum_r a_ri c_ri / sum_r a_ri.
float curvature(int r, std::size_t i)
{
  return 0.5f + static_cast<float>((i * 7 + static_cast<std::size_t>(r) * 13) % 11) / 10.0f;
}
float centre(int r, std::size_t i)
{
  return std::sin(0.1f * static_cast<float>(i) + static_cast<float>(r));
}
bool homogeneous = false;  // every rank the objective of rank 0

double optimum(std::size_t i)
{
  if (homogeneous) {
    return centre(0, i);
  }
  double num = 0, den = 0;
  for (int r = 0; r < world; ++r) {
    num += static_cast<double>(curvature(r, i)) * centre(r, i);
    den += curvature(r, i);
  }
  return num / den;
}

/// Runs `steps` of SGD with step lr * 200 / (200 + t) (the gradient averaged
/// by the collective with `Codec` and `Feedback`); returns the largest
/// distance to the optimum on rank 0.
template <class Codec, class Feedback>
double distance_after(int steps, float lr, Codec codec = {})
{
  double distance = 0;
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<Codec, Feedback> sync(t, terse::layout::single(dim), {}, codec);
    std::vector<float> x(dim, 0.0f), g(dim);
    for (int step = 0; step < steps; ++step) {
      for (std::size_t i = 0; i < dim; ++i) {
        const int r = homogeneous ? 0 : t.rank();
        g[i] = curvature(r, i) * (x[i] - centre(r, i));
      }
      sync.on_gradients(terse::host_span<float>(g));
      const float step_size = lr * 200.0f / (200.0f + static_cast<float>(step));
      for (std::size_t i = 0; i < dim; ++i) {
        x[i] -= step_size * g[i];
      }
    }
    if (t.rank() == 0) {
      for (std::size_t i = 0; i < dim; ++i) {
        distance = std::max(distance, std::abs(x[i] - optimum(i)));
      }
    }
  });
  return distance;
}

}  // namespace

TEST_CASE("EF-compressed SGD on a shared convex quadratic reaches the dense optimum")
{
  homogeneous = true;
  CHECK(distance_after<terse::compress::identity, terse::feedback::none>(1000, 0.5f) < 1e-5);
  CHECK(distance_after<terse::compress::topk, terse::feedback::residual>(1000, 0.5f, {.density = 0.1f}) < 1e-4);
  CHECK(distance_after<terse::compress::sign, terse::feedback::residual>(2000, 0.5f) < 1e-2);
  // unbiased 8-bit quantization needs no feedback
  CHECK(distance_after<terse::compress::uniform<8>, terse::feedback::none>(1000, 0.5f) < 1e-2);
  homogeneous = false;
}

TEST_CASE("with rank-specific objectives EF converges with a decaying step; without it top-k stalls")
{
  homogeneous = false;
  CHECK(distance_after<terse::compress::identity, terse::feedback::none>(2000, 0.5f) < 1e-5);
  const double early = distance_after<terse::compress::topk, terse::feedback::residual>(1000, 0.5f, {.density = 0.1f});
  const double late = distance_after<terse::compress::topk, terse::feedback::residual>(4000, 0.5f, {.density = 0.1f});
  const double stalled = distance_after<terse::compress::topk, terse::feedback::none>(4000, 0.5f, {.density = 0.1f});
  CHECK(late < 0.06);
  CHECK(late < early / 2);    // still converging (about 1/t)
  CHECK(stalled > 5 * late);  // no feedback: the untransmitted mass is lost
  CHECK(distance_after<terse::compress::sign, terse::feedback::residual>(4000, 0.5f) <
        0.5 * distance_after<terse::compress::sign, terse::feedback::none>(4000, 0.5f));
}

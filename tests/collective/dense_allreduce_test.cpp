// The dense allreduce (identity, no feedback, every step) over the local
// transport: exact for integers, within rounding for random data.
#include <terse/collective/allreduce.hpp>
#include <terse/core/philox.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

namespace {
// A gradient-like layout: a few big tensors and several small ones.
terse::layout model_layout()
{
  const std::vector<std::size_t> sizes{784 * 64, 64, 64 * 64, 64, 64 * 10, 10, 3, 1};
  return terse::layout(sizes, 4096);
}
}  // namespace

TEST_CASE("dense allreduce averages integer-valued gradients exactly for W = 1..8")
{
  const terse::layout shape = model_layout();
  for (int world = 1; world <= 8; ++world) {
    CAPTURE(world);
    std::vector<std::vector<float>> results(static_cast<std::size_t>(world));
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::allreduce sync(t, shape);
      std::vector<float> grads(shape.total());
      for (std::size_t i = 0; i < grads.size(); ++i) {
        grads[i] = static_cast<float>(world * (static_cast<int>(i % 13) - 6) + t.rank() - (world - 1) / 2);
      }
      CHECK(sync.on_gradients(terse::host_span<float>(grads)) == terse::sync_action::average);
      results[static_cast<std::size_t>(t.rank())] = grads;
    });
    // mean over r of (world*k + r - c) = world*k + (world-1)/2 - c: exact in float
    const double offset = (world - 1) / 2.0 - (world - 1) / 2;
    for (std::size_t i = 0; i < shape.total(); ++i) {
      const double expected = world * (static_cast<int>(i % 13) - 6) + offset;
      for (int r = 0; r < world; ++r) {
        REQUIRE(results[static_cast<std::size_t>(r)][i] == expected);
      }
    }
  }
}

TEST_CASE("dense allreduce of random gradients matches a double-precision mean within rounding")
{
  const terse::layout shape = model_layout();
  constexpr int world = 8;
  const auto value = [](int rank, std::size_t i) {
    const terse::random_stream s{.seed = 11, .step = 0, .stream = static_cast<std::uint32_t>(rank)};
    return (s.uniform(i) - 0.5f) * 1e-2f;
  };
  std::vector<std::vector<float>> results(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce sync(t, shape);
    std::vector<float> grads(shape.total());
    for (std::size_t i = 0; i < grads.size(); ++i) {
      grads[i] = value(t.rank(), i);
    }
    sync.average(terse::host_span<float>(grads));
    results[static_cast<std::size_t>(t.rank())] = grads;
  });
  for (std::size_t i = 0; i < shape.total(); ++i) {
    double mean = 0;
    for (int r = 0; r < world; ++r) {
      mean += value(r, i);
    }
    mean /= world;
    // 8 float additions and a division: a few ulps of the largest addend
    REQUIRE(std::abs(results[0][i] - mean) <= 8 * 5e-3 * 0x1p-23);
    for (int r = 1; r < world; ++r) {
      REQUIRE(results[static_cast<std::size_t>(r)][i] == results[0][i]);  // replicas stay identical
    }
  }
}

TEST_CASE("every_step averages gradients, never parameters, and a wrong buffer size is rejected")
{
  terse::run_local(2, [&](terse::local_transport& t) {
    terse::allreduce sync(t, terse::layout::single(4));
    std::vector<float> params{1, 2, 3, static_cast<float>(t.rank())};
    CHECK(sync.on_parameters(terse::host_span<float>(params)) == terse::sync_action::skip);
    CHECK(params[3] == static_cast<float>(t.rank()));
    std::vector<float> wrong(5);
    CHECK_THROWS_AS(sync.average(terse::host_span<float>(wrong)), terse::error);
  });
}

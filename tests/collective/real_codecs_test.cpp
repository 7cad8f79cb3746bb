// The compressed allreduce with terse's own codecs, one or more per path:
// replicas stay bit-identical, exact settings give the exact average, and
// lossy ones stay within their error bounds.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/dgc.hpp>
#include <terse/compress/randomk.hpp>
#include <terse/compress/sign.hpp>
#include <terse/compress/topk.hpp>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/residual.hpp>
#if defined(TERSE_WITH_BLAS)
#include <terse/compress/powersgd.hpp>
#endif

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "../compress/codec_test_support.hpp"

namespace {

const terse::layout& model_layout()
{
  static const std::vector<std::size_t> sizes{6000, 40, 2500, 10, 3333};
  static const terse::layout shape(sizes, 9000, /*dense_below=*/64);
  return shape;
}

std::vector<float> rank_gradient(int rank, std::size_t n, int step = 0)
{
  return codec_test::gradient_like(n, static_cast<std::uint64_t>(rank * 1000 + step + 1));
}

std::vector<double> exact_mean(int world, std::size_t n, int step = 0)
{
  std::vector<double> mean(n, 0.0);
  for (int r = 0; r < world; ++r) {
    const auto g = rank_gradient(r, n, step);
    for (std::size_t i = 0; i < n; ++i) {
      mean[i] += g[i];
    }
  }
  for (double& m : mean) {
    m /= world;
  }
  return mean;
}

/// Runs one averaging step on every rank; returns each rank's result.
template <class Codec, class Feedback = terse::feedback::none>
std::vector<std::vector<float>> average_once(int world, Codec codec, Feedback feedback = {})
{
  const terse::layout& shape = model_layout();
  std::vector<std::vector<float>> results(static_cast<std::size_t>(world));
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<Codec, Feedback> sync(t, shape, {}, codec, feedback);
    auto g = rank_gradient(t.rank(), shape.total());
    sync.average(terse::host_span<float>(g));
    results[static_cast<std::size_t>(t.rank())] = g;
  });
  for (std::size_t r = 1; r < results.size(); ++r) {
    REQUIRE(results[r] == results[0]);  // bit-identical replicas
  }
  return results;
}

double max_abs_error(const std::vector<float>& got, const std::vector<double>& want)
{
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - want[i]));
  }
  return worst;
}

}  // namespace

TEST_CASE("top-k, threshold-free DGC and random-k at full density give the exact average")
{
  for (int world = 1; world <= 8; ++world) {
    CAPTURE(world);
    const auto mean = exact_mean(world, model_layout().total());
    // sums in rank order then one scaling: a few ulps of 1e-2
    CHECK(max_abs_error(average_once(world, terse::compress::topk{.density = 1.0f})[0], mean) < 1e-8);
    CHECK(max_abs_error(average_once(world, terse::compress::randomk{.density = 1.0})[0], mean) < 1e-8);
  }
}

TEST_CASE("top-1% through the gather path keeps the largest coordinates of every rank")
{
  constexpr int world = 4;
  const auto results = average_once(world, terse::compress::topk{.density = 0.01f});
  // exactly the union of each rank's top 1% per segment is nonzero (at most W*k)
  std::size_t nonzero = 0;
  for (float v : results[0]) {
    nonzero += v != 0.0f ? 1 : 0;
  }
  const terse::layout& shape = model_layout();
  std::size_t bound = 0;
  for (const auto& seg : shape.segments()) {
    bound +=
        seg.compressed ? world * static_cast<std::size_t>(std::ceil(0.01 * static_cast<double>(seg.count))) : seg.count;
  }
  CHECK(nonzero <= bound);
  CHECK(nonzero > bound / 2);
}

TEST_CASE("sign through the requantizing path stays within the bucket scales, for W = 1..8")
{
  for (int world = 1; world <= 8; ++world) {
    CAPTURE(world);
    const auto results = average_once(world, terse::compress::sign{}, terse::feedback::residual{});
    double largest = 0;
    for (float v : results[0]) {
      largest = std::max(largest, static_cast<double>(std::abs(v)));
    }
    CHECK(largest > 0.0);
    CHECK(largest < 0.1);  // mean |g| per bucket is ~0.008 for these gradients
  }
}

TEST_CASE("DGC with momentum correction over the gather path: replicas identical, density warm-up honoured")
{
  constexpr int world = 3;
  const terse::layout& shape = model_layout();
  std::vector<std::size_t> sent_first(world), sent_late(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<terse::compress::dgc, terse::feedback::dgc_momentum> sync(
        t, shape, {}, terse::compress::dgc{.density = 0.01f},
        terse::feedback::dgc_momentum({.momentum = 0.9f, .warmup_steps = 4, .warmup_density = 0.25}));
    for (int step = 0; step < 6; ++step) {
      auto g = rank_gradient(t.rank(), shape.total(), step);
      sync.average(terse::host_span<float>(g));
      std::size_t nonzero = 0;
      for (float v : g) {
        nonzero += v != 0.0f ? 1 : 0;
      }
      if (step == 0) {
        sent_first[static_cast<std::size_t>(t.rank())] = nonzero;
      }
      if (step == 5) {
        sent_late[static_cast<std::size_t>(t.rank())] = nonzero;
      }
    }
  });
  CHECK(sent_first[0] > 5 * sent_late[0]);  // 25% at first, 1% after warm-up
  CHECK(sent_first[0] == sent_first[1]);
}

#if defined(TERSE_WITH_BLAS)
TEST_CASE("PowerSGD through the collective recovers a shared rank-2 gradient and keeps replicas identical")
{
  constexpr int world = 4;
  const terse::layout shape = terse::layout::single(64 * 64);
  std::vector<std::vector<float>> results(world);
  std::vector<float> truth(shape.total());
  for (std::size_t i = 0; i < 64; ++i) {
    for (std::size_t j = 0; j < 64; ++j) {
      truth[i * 64 + j] = std::sin(0.1f * static_cast<float>(i)) * std::cos(0.2f * static_cast<float>(j)) +
                          0.5f * std::cos(0.05f * static_cast<float>(i * j % 17));
    }
  }
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<terse::compress::powersgd> sync(t, shape, {}, terse::compress::powersgd{.rank = 4});
    std::vector<float> g;
    for (int step = 0; step < 8; ++step) {  // warm starts converge
      g = truth;
      sync.average(terse::host_span<float>(g));
    }
    results[static_cast<std::size_t>(t.rank())] = g;
  });
  for (int r = 1; r < world; ++r) {
    CHECK(results[static_cast<std::size_t>(r)] == results[0]);
  }
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    err += (results[0][i] - truth[i]) * (results[0][i] - truth[i]);
    norm += truth[i] * truth[i];
  }
  CHECK(std::sqrt(err / norm) < 0.2);
}
#endif

TEST_CASE("fp16 overflow in the allreduce: an error on every rank by default, Inf or saturation when asked")
{
  // Every rank averages {1e5, -3e5, 1, 7e4}: three values beyond fp16's range.
  const std::vector<float> input{1e5f, -3e5f, 1.0f, 7e4f};
  const auto average_with = [&](terse::compress::overflow policy) {
    std::vector<std::vector<float>> out(4);
    std::vector<int> raised(4, 0);
    terse::run_local(4, [&](terse::local_transport& t) {
      terse::allreduce sync(t, terse::layout::single(4), terse::compress::cast_fp16{.on_overflow = policy});
      std::vector<float> v = input;
      try {
        sync.average(terse::host_span<float>(v));
      } catch (const terse::error& e) {
        raised[static_cast<std::size_t>(t.rank())] = e.code() == terse::errc::non_finite ? 1 : 2;
        CHECK(std::memcmp(v.data(), input.data(), sizeof(float) * 4) == 0);  // untouched
      }
      out[static_cast<std::size_t>(t.rank())] = v;
    });
    return std::pair{out, raised};
  };
  {
    const auto [out, raised] = average_with(terse::compress::overflow::raise);
    CHECK(raised == std::vector<int>(4, 1));
  }
  {
    const auto [out, raised] = average_with(terse::compress::overflow::infinity);
    CHECK(raised == std::vector<int>(4, 0));
    for (const auto& v : out) {
      CHECK(v[0] == INFINITY);
      CHECK(v[1] == -INFINITY);
      CHECK(v[2] == 1.0f);
      CHECK(v[3] == INFINITY);
    }
  }
  {
    const auto [out, raised] = average_with(terse::compress::overflow::saturate);
    CHECK(raised == std::vector<int>(4, 0));
    CHECK(out[0] == std::vector<float>{65504.0f, -65504.0f, 1.0f, 65504.0f});
  }
  // Inf in the average and a residual do not mix: refused when built.
  terse::run_local(1, [&](terse::local_transport& t) {
    CHECK_THROWS_AS(terse::allreduce(t, terse::layout::single(4),
                                     terse::compress::cast_fp16{.on_overflow = terse::compress::overflow::infinity},
                                     terse::feedback::residual{}),
                    terse::error);
  });
}

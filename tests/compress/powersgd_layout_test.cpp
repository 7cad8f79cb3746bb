// compress::powersgd through terse::allreduce with a layout that declares
// tensor shapes: each weight matrix recovered with its own shape, vectors
// averaged exactly, and a checkpoint that resumes bit for bit.
#include <terse/collective/allreduce.hpp>
#include <terse/collective/layout.hpp>
#include <terse/compress/powersgd.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <sstream>
#include <vector>

#include "powersgd_test_support.hpp"

using terse::tensor_shape;
using terse::compress::powersgd;
using namespace powersgd_test;

namespace {

std::vector<float> part(const std::vector<float>& v, std::size_t offset, std::size_t count)
{
  return {v.begin() + static_cast<std::ptrdiff_t>(offset), v.begin() + static_cast<std::ptrdiff_t>(offset + count)};
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b)
{
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), 4 * a.size()) == 0;
}

}  // namespace

TEST_CASE("powersgd per tensor through terse::allreduce with a layout that declares shapes")
{
  const std::vector<tensor_shape> shapes{tensor_shape::matrix(64, 48), tensor_shape::vector(48),
                                         tensor_shape::matrix(48, 10), tensor_shape::vector(10)};
  const terse::layout shape(shapes, 1 << 20);
  REQUIRE(shape.segments().size() == 1);
  CHECK(shape.shapes_of(shape.segments()[0]).size() == 4);
  const auto w1 = low_rank(64, 48, 1, 3);
  const auto w2 = low_rank(48, 10, 1, 4);
  constexpr int world = 4;
  std::vector<std::vector<float>> results(world);
  std::vector<std::vector<float>> inputs(world);
  for (std::size_t r = 0; r < world; ++r) {
    auto& v = inputs[r];
    v.insert(v.end(), w1.begin(), w1.end());
    for (std::size_t i = 0; i < 48; ++i) {
      v.push_back(static_cast<float>(r * 48 + i) * 0.25f);
    }
    v.insert(v.end(), w2.begin(), w2.end());
    for (std::size_t i = 0; i < 10; ++i) {
      v.push_back(-static_cast<float>(r + i));
    }
  }
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<powersgd> sync(t, shape, {}, powersgd{.rank = 2});
    std::vector<float> g = inputs[static_cast<std::size_t>(t.rank())];
    sync.average(terse::host_span<float>(g));
    results[static_cast<std::size_t>(t.rank())] = g;
  });
  for (std::size_t r = 1; r < world; ++r) {
    CHECK(results[r] == results[0]);
  }
  CHECK(relative_error(part(results[0], 0, 64 * 48), w1) < 1e-5);
  CHECK(relative_error(part(results[0], 64 * 48 + 48, 480), w2) < 1e-5);
  for (std::size_t i = 0; i < 48; ++i) {  // mean over r of (48r + i)/4 = (72 + i)/4, exactly
    CHECK(results[0][64 * 48 + i] == static_cast<float>(72 + i) * 0.25f);
  }
  for (std::size_t i = 0; i < 10; ++i) {  // mean over r of −(r + i) = −(1.5 + i)
    CHECK(results[0][64 * 48 + 48 + 480 + i] == -(1.5f + static_cast<float>(i)));
  }
}

TEST_CASE("powersgd per tensor through terse::allreduce: a checkpoint resumes bit for bit; another layout refuses it")
{
  const std::vector<tensor_shape> shapes{tensor_shape::matrix(40, 30), tensor_shape::vector(30),
                                         tensor_shape::matrix(30, 6), tensor_shape::vector(6)};
  const terse::layout shape(shapes, 1 << 20);
  const std::vector<std::size_t> sizes{1200, 30, 180, 6};
  const terse::layout unshaped(sizes, 1 << 20);
  const auto gradient = [](int rank, int step) {
    auto g = noise(1416, static_cast<std::uint64_t>(100 * rank + step));
    return std::vector<float>(g.begin(), g.end());
  };
  constexpr int world = 2;
  std::vector<std::vector<float>> straight(world), resumed(world);
  std::vector<int> refused(world, 0);
  terse::run_local(world, [&](terse::local_transport& t) {
    const int r = t.rank();
    using sync_type = terse::allreduce<powersgd, terse::feedback::residual>;
    sync_type a(t, shape, {}, powersgd{.rank = 2});
    std::stringstream blob;
    std::vector<float> g;
    for (int step = 0; step < 4; ++step) {
      if (step == 2) {
        a.save(blob);
      }
      g = gradient(r, step);
      a.average(terse::host_span<float>(g));
    }
    straight[static_cast<std::size_t>(r)] = g;

    sync_type b(t, shape, {}, powersgd{.rank = 2});
    std::stringstream copy(blob.str());
    b.load(copy);
    for (int step = 2; step < 4; ++step) {
      g = gradient(r, step);
      b.average(terse::host_span<float>(g));
    }
    resumed[static_cast<std::size_t>(r)] = g;

    sync_type c(t, unshaped, {}, powersgd{.rank = 2});
    std::stringstream again(blob.str());
    try {
      c.load(again);
    } catch (const terse::error& e) {
      refused[static_cast<std::size_t>(r)] = e.code() == terse::errc::io ? 1 : 2;
    }
  });
  for (std::size_t r = 0; r < world; ++r) {
    CHECK(same_bits(straight[r], resumed[r]));
    CHECK(refused[r] == 1);
  }
}

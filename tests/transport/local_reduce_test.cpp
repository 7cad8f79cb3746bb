// Reductions on the local transport: exact sums, every type, every world
// size from 1 to 8, bit-identical results on all ranks.
#include <terse/core/concepts.hpp>
#include <terse/core/philox.hpp>
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <vector>

namespace {

// Small integers are exact in every type, so sums are exact too.
template <class T>
T small_integer(int rank, std::size_t i)
{
  const int v = static_cast<int>((static_cast<std::size_t>(rank) * 7 + i * 3) % 17) - 8;
  if constexpr (std::is_same_v<T, terse::fp16> || std::is_same_v<T, terse::bf16>) {
    return T(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

template <class T>
double as_double(T v)
{
  if constexpr (std::is_same_v<T, terse::fp16> || std::is_same_v<T, terse::bf16>) {
    return static_cast<float>(v);
  } else {
    return static_cast<double>(v);
  }
}

template <class T>
void check_exact_allreduce(int world, std::size_t n)
{
  std::vector<std::vector<T>> results(static_cast<std::size_t>(world));
  terse::run_local(world, [&](terse::local_transport& t) {
    std::vector<T> in(n);
    for (std::size_t i = 0; i < n; ++i) {
      in[i] = small_integer<T>(t.rank(), i);
    }
    std::vector<T> out(n);
    t.allreduce(terse::host_span<const T>(in), terse::host_span<T>(out), terse::reduce_op::sum);
    results[static_cast<std::size_t>(t.rank())] = out;
  });
  for (std::size_t i = 0; i < n; ++i) {
    double expected = 0;
    for (int r = 0; r < world; ++r) {
      expected += as_double(small_integer<T>(r, i));
    }
    for (int r = 0; r < world; ++r) {
      REQUIRE(as_double(results[static_cast<std::size_t>(r)][i]) == expected);
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE("allreduce sums exactly for W = 1..8 and awkward sizes", T, float, double, terse::fp16, terse::bf16,
                   std::int32_t, std::int64_t)
{
  for (int world = 1; world <= 8; ++world) {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{4099}}) {
      CAPTURE(world);
      CAPTURE(n);
      check_exact_allreduce<T>(world, n);
    }
  }
}

TEST_CASE("allreduce of random floats is bit-identical on every rank and equals a rank-order serial sum")
{
  constexpr int world = 8;
  constexpr std::size_t n = 100003;
  const auto value = [](int rank, std::size_t i) {
    const terse::random_stream stream{.seed = 5, .step = 0, .stream = static_cast<std::uint32_t>(rank)};
    return stream.uniform(i) * 2.0f - 1.0f;
  };
  std::vector<std::vector<float>> results(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    std::vector<float> buffer(n);
    for (std::size_t i = 0; i < n; ++i) {
      buffer[i] = value(t.rank(), i);
    }
    t.allreduce(terse::host_span<float>(buffer), terse::reduce_op::average);  // in place
    results[static_cast<std::size_t>(t.rank())] = buffer;
  });
  for (std::size_t i = 0; i < n; ++i) {
    float sum = value(0, i);
    for (int r = 1; r < world; ++r) {
      sum += value(r, i);
    }
    const float expected = sum / static_cast<float>(world);
    for (int r = 0; r < world; ++r) {
      REQUIRE(std::memcmp(&results[static_cast<std::size_t>(r)][i], &expected, sizeof(float)) == 0);
    }
  }
}

TEST_CASE("fp16 and bf16 accumulate in fp32 and round once")
{
  // 1 + 8 * 2^-11: each addend alone is lost when rounding to fp16 after
  // every step (ulp(1) = 2^-10), but the fp32 sum rounds to 1 + 2^-8.
  constexpr int world = 9;
  std::vector<float> results(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    std::vector<terse::fp16> buffer{terse::fp16(t.rank() == 0 ? 1.0f : 0x1p-11f)};
    t.allreduce(terse::host_span<terse::fp16>(buffer), terse::reduce_op::sum);
    results[static_cast<std::size_t>(t.rank())] = static_cast<float>(buffer[0]);
  });
  for (float r : results) {
    CHECK(r == 1.0f + 0x1p-8f);
  }
}

TEST_CASE("max, min and average")
{
  constexpr int world = 5;
  std::vector<std::vector<double>> results(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    const double mine = static_cast<double>(t.rank() * 10 - 20);
    std::vector<double> hi{mine}, lo{mine}, mean{mine};
    t.allreduce(terse::host_span<double>(hi), terse::reduce_op::max);
    t.allreduce(terse::host_span<double>(lo), terse::reduce_op::min);
    t.allreduce(terse::host_span<double>(mean), terse::reduce_op::average);
    results[static_cast<std::size_t>(t.rank())] = {hi[0], lo[0], mean[0]};
  });
  for (const auto& r : results) {
    CHECK(r[0] == 20.0);
    CHECK(r[1] == -20.0);
    CHECK(r[2] == 0.0);
  }
}

TEST_CASE("average of an integer type is an invalid argument on every rank")
{
  int invalid = 0;
  std::mutex guard;
  terse::run_local(3, [&](terse::local_transport& t) {
    std::vector<std::int32_t> v{1, 2};
    try {
      t.allreduce(terse::host_span<std::int32_t>(v), terse::reduce_op::average);
    } catch (const terse::error& e) {
      const std::lock_guard lock(guard);
      invalid += e.code() == terse::errc::invalid_argument ? 1 : 0;
    }
    t.allreduce(terse::host_span<std::int32_t>(v), terse::reduce_op::sum);  // still usable
    CHECK(v[1] == 6);
  });
  CHECK(invalid == 3);
}

TEST_CASE("reduce_scatter gives each rank its block of the sum, also in place")
{
  for (int world = 1; world <= 6; ++world) {
    constexpr std::size_t block = 5;
    std::vector<std::vector<float>> results(static_cast<std::size_t>(world));
    std::vector<std::vector<float>> in_place(static_cast<std::size_t>(world));
    terse::run_local(world, [&](terse::local_transport& t) {
      const auto w = static_cast<std::size_t>(t.size());
      std::vector<float> in(block * w);
      for (std::size_t i = 0; i < in.size(); ++i) {
        in[i] = small_integer<float>(t.rank(), i);
      }
      std::vector<float> out(block);
      t.reduce_scatter(terse::host_span<const float>(in), terse::host_span<float>(out), terse::reduce_op::sum);
      results[static_cast<std::size_t>(t.rank())] = out;
      auto own = terse::host_span<float>(in).subspan(block * static_cast<std::size_t>(t.rank()), block);
      t.reduce_scatter(terse::host_span<const float>(in), own, terse::reduce_op::sum);
      in_place[static_cast<std::size_t>(t.rank())].assign(own.begin(), own.end());
    });
    for (int r = 0; r < world; ++r) {
      for (std::size_t j = 0; j < block; ++j) {
        double expected = 0;
        for (int k = 0; k < world; ++k) {
          expected += small_integer<float>(k, block * static_cast<std::size_t>(r) + j);
        }
        CHECK(results[static_cast<std::size_t>(r)][j] == expected);
        CHECK(in_place[static_cast<std::size_t>(r)][j] == expected);
      }
    }
  }
}

TEST_CASE("integer sums wrap instead of overflowing, as MPI and NCCL sums do")
{
  std::vector<std::int32_t> results(2);
  terse::run_local(2, [&](terse::local_transport& t) {
    std::vector<std::int32_t> v{t.rank() == 0 ? std::numeric_limits<std::int32_t>::max() : 1};
    t.allreduce(terse::host_span<std::int32_t>(v), terse::reduce_op::sum);
    results[static_cast<std::size_t>(t.rank())] = v[0];
  });
  CHECK(results[0] == std::numeric_limits<std::int32_t>::min());
  CHECK(results[1] == std::numeric_limits<std::int32_t>::min());
  static_assert(terse::concepts::collective_transport<terse::local_transport, terse::memory_space::host>);
  static_assert(!terse::concepts::collective_transport<terse::local_transport, terse::memory_space::device>);
}

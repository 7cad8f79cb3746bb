// The one summation order of the schedules' monitored sums (blocks of 256
// terms in index order, then the block sums in order) and FDA's chunked
// sketch order: the host functions follow them exactly, so the device
// kernels, which follow the same definitions, give the same bits.
#include <terse/core/span.hpp>
#include <terse/schedule/detail/ams_sketch.hpp>
#include <terse/schedule/detail/blocked_sum.hpp>
#include <terse/schedule/detail/fda_estimators.hpp>
#include <terse/schedule/detail/reference_model.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <vector>

namespace {

using terse::host_span;
namespace sd = terse::schedule::detail;

// Terms of very different magnitudes, so that the order shows in the bits.
std::vector<double> mixed_terms(std::size_t n)
{
  std::vector<double> t(n);
  for (std::size_t i = 0; i < n; ++i) {
    t[i] = std::ldexp(1.0 + static_cast<double>(i % 7) / 7.0, static_cast<int>(i % 41) - 20) * (i % 3 == 0 ? -1 : 1);
  }
  return t;
}

}  // namespace

TEST_CASE("blocked_sum adds blocks of 256 terms in order, then the block sums in order")
{
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{255}, std::size_t{256}, std::size_t{257},
                              std::size_t{1000}, std::size_t{5003}}) {
    CAPTURE(n);
    const std::vector<double> t = mixed_terms(n);
    std::vector<double> partials;
    for (std::size_t begin = 0; begin < n; begin += 256) {
      double p = 0.0;
      for (std::size_t i = begin; i < std::min(n, begin + 256); ++i) {
        p += t[i];
      }
      partials.push_back(p);
    }
    double expected = 0.0;
    for (const double p : partials) {
      expected += p;
    }
    const double got = sd::blocked_sum([&](std::size_t i) { return t[i]; }, n);
    CHECK(got == expected);
    CHECK(sd::reduction_blocks(n) == partials.size());
    CHECK(sd::add_partials(partials.data(), partials.size()) == expected);
  }
}

TEST_CASE("the schedules' norms use the blocked order, not one running sum")
{
  // (2^27)² = 2^54, whose ulp is 4: a running sum drops every later 1,
  // while the second block's 256 ones survive as one partial.
  std::vector<float> v(512, 1.0f);
  v[0] = 134217728.0f;  // 2^27
  const double blocked = 18014398509481984.0 + 256.0;
  double running = 0.0;
  for (const float x : v) {
    running += static_cast<double>(x) * x;
  }
  CHECK(running == 18014398509481984.0);
  CHECK(sd::squared_norm(host_span<const float>(v)) == blocked);
  const std::vector<float> zero(v.size(), 0.0f);
  CHECK(sd::squared_distance(host_span<const float>(v), host_span<const float>(zero)) == blocked);
  // FDA's linear state: ‖Δ‖² and ξ·Δ in the same order.
  const std::vector<float> ones(v.size(), 1.0f);
  std::vector<double> state(2);
  std::vector<float> big_first(v.size(), 1.0f);
  big_first[0] = 18014398509481984.0f;  // 2^54: ξ·Δ = 2^54 + 511 ones, blocked
  sd::fda_linear_state(host_span<const float>(v), host_span<const float>(ones), host_span<double>(state));
  CHECK(state[0] == blocked);
  sd::fda_linear_state(host_span<const float>(big_first), host_span<const float>(ones), host_span<double>(state));
  CHECK(state[1] == 18014398509481984.0 + 256.0);
}

TEST_CASE("the chunked AMS sketch is the sketch, exactly on integer values, and leaves its scratch zero")
{
  const std::uint32_t rows = 3;
  const std::uint32_t columns = 17;
  for (const std::size_t n : {std::size_t{1}, std::size_t{4096}, std::size_t{10001}}) {
    CAPTURE(n);
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = static_cast<float>(static_cast<int>(i * 7919 % 41) - 20);
    }
    std::vector<double> flat(rows * columns, 0.0);
    std::vector<double> chunked(rows * columns, 0.0);
    std::vector<double> chunk_row(columns, 0.0);
    sd::ams_sketch_add(77, rows, columns, host_span<const float>(v), host_span<double>(flat));
    sd::ams_sketch_add_chunked(77, rows, columns, host_span<const float>(v), host_span<double>(chunked),
                               host_span<double>(chunk_row));
    CHECK(chunked == flat);  // integer sums are exact in any order
    CHECK(chunk_row == std::vector<double>(columns, 0.0));
  }
}

TEST_CASE("the chunked sketch adds each column's chunk sums in chunk order")
{
  // One column, one row: the sketch is Σ ±v_i, in chunks of 4096.
  const std::size_t n = 8192;
  std::vector<float> v(n, 1.0f);
  v[0] = 9007199254740992.0f;  // 2^53, its sign from the sketch's hash
  std::vector<double> sketch(1, 0.0);
  std::vector<double> chunk_row(1, 0.0);
  sd::ams_sketch_add_chunked(5, 1, 1, host_span<const float>(v), host_span<double>(sketch),
                             host_span<double>(chunk_row));
  double chunk[2] = {0.0, 0.0};
  for (std::size_t i = 0; i < n; ++i) {
    const sd::sketch_slot slot = sd::ams_sketch_slot(5, 0, 1, i);
    CHECK(slot.column == 0);
    chunk[i / 4096] += slot.negative ? -static_cast<double>(v[i]) : static_cast<double>(v[i]);
  }
  CHECK(sketch[0] == (0.0 + chunk[0]) + chunk[1]);
}

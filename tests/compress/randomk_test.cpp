// compress::randomk: k = ceil(density n), index sets that are identical on
// every rank, distinct, sorted and uniformly random (each index with
// frequency k/n, each pair with k(k-1)/(n(n-1))), unbiased decoding,
// summability, the byte payload, edge inputs, malformed payloads,
// non-finite input and fused residual bit-identity.
#include <terse/compress/randomk.hpp>
#include <terse/core/concepts.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "codec_test_support.hpp"
#include "signs_test_support.hpp"

namespace {

using terse::compress::randomk;
using namespace signs_test;

static_assert(terse::concepts::compressor<randomk>);
static_assert(terse::concepts::summable_compressor<randomk>);
static_assert(terse::concepts::residual_fusing_compressor<randomk>);

std::vector<std::uint64_t> indices_of(randomk& codec, const terse::codec_context& ctx, std::size_t n)
{
  const auto idx = codec.indices(ctx, n);
  return {idx.begin(), idx.end()};
}

// Floyd's algorithm with a std::set, from the documented draws.
std::vector<std::uint64_t> reference_indices(const terse::codec_context& ctx, std::size_t n, std::size_t k)
{
  std::set<std::uint64_t> chosen;
  for (std::size_t m = 0; m < k; ++m) {
    const std::uint64_t j = n - k + m;
    const std::uint64_t t = terse::detail::randomk_draw(ctx.shared_stream(), m, j + 1);
    chosen.insert(chosen.count(t) != 0 ? j : t);
  }
  return {chosen.begin(), chosen.end()};
}

std::vector<float> decode_values(randomk& codec, const terse::codec_context& ctx, const std::vector<float>& wire,
                                 std::size_t n)
{
  std::vector<float> out(n, 7.0f);
  codec.decode_values(ctx, terse::host_span<const float>(wire), terse::host_span<float>(out));
  return out;
}

std::vector<float> encode_values(randomk& codec, const terse::codec_context& ctx, const std::vector<float>& v)
{
  std::vector<float> wire(codec.wire_count(v.size()));
  codec.encode_values(ctx, terse::host_span<const float>(v), terse::host_span<float>(wire));
  return wire;
}

}  // namespace

TEST_CASE("randomk: k = ceil(density n), at least 1 and at most n; 24 + 4k payload bytes")
{
  CHECK(randomk{.density = 0.07}.wire_count(100) == 7);
  CHECK(randomk{.density = 0.01}.wire_count(100) == 1);
  CHECK(randomk{.density = 0.01}.wire_count(101) == 2);
  CHECK(randomk{.density = 0.1}.wire_count(1000) == 100);
  CHECK(randomk{.density = 0.3}.wire_count(10) == 3);
  CHECK(randomk{.density = 1e-9}.wire_count(10) == 1);
  CHECK(randomk{.density = 1.0}.wire_count(12345) == 12345);
  CHECK(randomk{.density = 0.5}.wire_count(0) == 0);
  CHECK(randomk{.density = 0.01}.wire_count(std::size_t{1} << 26) == 671089);
  for (double density : {0.001, 0.01, 0.25, 1.0}) {
    randomk codec{.density = density};
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{99}, std::size_t{4096}}) {
      CAPTURE(density);
      CAPTURE(n);
      CHECK(codec.max_encoded_bytes(n) == 24 + 4 * codec.wire_count(n));
      CHECK(codec_test::encode(codec, context(), mixed(n)).size() == codec.max_encoded_bytes(n));
    }
  }
}

TEST_CASE("randomk: indices are distinct, sorted, in range, and Floyd's set for the shared stream")
{
  for (double density : {0.001, 0.02, 0.3, 0.9, 1.0}) {
    for (std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{100}, std::size_t{5000}, std::size_t{200003}}) {
      CAPTURE(density);
      CAPTURE(n);
      randomk codec{.density = density};
      const auto idx = indices_of(codec, context(), n);
      CHECK(idx.size() == codec.wire_count(n));
      CHECK(std::adjacent_find(idx.begin(), idx.end(), [](auto a, auto b) { return a >= b; }) == idx.end());
      CHECK((idx.empty() || idx.back() < n));
      CHECK(idx == reference_indices(context(), n, idx.size()));
    }
  }
}

TEST_CASE("randomk: huge n: the sampler never touches O(n) memory and still replays Floyd exactly")
{
  // 2^40 values with k = 1100; and 2^62 values, where (value, draw) pairs
  // no longer fit 64 bits and the hash-set fallback runs.
  for (const auto& size : {std::pair{std::size_t{1} << 40, 1e-9}, std::pair{std::size_t{1} << 62, 2e-18}}) {
    const std::size_t n = size.first;
    const double density = size.second;
    CAPTURE(n);
    randomk codec{.density = density};
    const auto idx = indices_of(codec, context(), n);
    CHECK(idx.size() == codec.wire_count(n));
    CHECK(std::adjacent_find(idx.begin(), idx.end(), [](auto a, auto b) { return a >= b; }) == idx.end());
    CHECK(idx.back() < n);
    CHECK(idx == reference_indices(context(), n, idx.size()));
  }
}

TEST_CASE("randomk: every rank picks the same indices; steps, buckets and seeds pick others")
{
  randomk a{.density = 0.05};
  randomk b{.density = 0.05};
  const std::size_t n = 10000;
  const auto mine = indices_of(a, context(3, 0), n);
  for (int rank = 1; rank < 4; ++rank) {
    auto ctx = context(3, rank);
    ctx.phase = 1;
    ctx.offset = 17;
    CHECK(indices_of(b, ctx, n) == mine);
  }
  CHECK(indices_of(b, context(4, 0), n) != mine);
  CHECK(indices_of(b, context(3, 0, 6), n) != mine);
  auto other_seed = context(3, 0);
  other_seed.seed += 1;
  CHECK(indices_of(b, other_seed, n) != mine);
}

TEST_CASE("randomk: each index has frequency k/n and each pair k(k-1)/(n(n-1)) within 5 sigma")
{
  // Uniform k-subsets, not merely equal marginals: pair frequencies tell
  // a stratified or systematic sampler apart.
  randomk codec{.density = 0.2};
  const std::size_t n = 40;
  const std::size_t k = codec.wire_count(n);
  REQUIRE(k == 8);
  const int steps = 6000;
  std::vector<int> single(n, 0);
  std::vector<int> pair(n * n, 0);
  for (int t = 0; t < steps; ++t) {
    const auto idx = indices_of(codec, context(static_cast<std::uint64_t>(t)), n);
    for (std::size_t a = 0; a < k; ++a) {
      ++single[idx[a]];
      for (std::size_t b = a + 1; b < k; ++b) {
        ++pair[idx[a] * n + idx[b]];
      }
    }
  }
  const double p1 = static_cast<double>(k) / n;
  const double p2 = static_cast<double>(k * (k - 1)) / static_cast<double>(n * (n - 1));
  for (std::size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(std::fabs(single[i] - steps * p1) <= 5 * std::sqrt(steps * p1 * (1 - p1)));
    for (std::size_t j = i + 1; j < n; ++j) {
      CAPTURE(j);
      CHECK(std::fabs(pair[i * n + j] - steps * p2) <= 5 * std::sqrt(steps * p2 * (1 - p2)));
    }
  }
}

TEST_CASE("randomk: unbiased: the mean of 4000 independent steps is within 5 standard errors")
{
  // decode_i = v_i s with probability k/n (s = fl32(n/k)), else 0.
  randomk codec{.density = 0.25};
  const std::vector<float> v = {0.5f,    -0.25f, 0.125f, 1.0f,   -1.0f, 0.0f, 0.01f, -0.7f, 0.3f, 0.999f,
                                -0.001f, 0.6f,   0.2f,   -0.45f, 0.05f, 0.8f, 3.0f,  -1.5f, 0.4f, 2.9f};
  const std::size_t n = v.size();
  const int steps = 4000;
  std::vector<double> sum(n, 0.0);
  for (int t = 0; t < steps; ++t) {
    const auto decoded = codec_test::round_trip(codec, context(static_cast<std::uint64_t>(t)), v);
    for (std::size_t i = 0; i < n; ++i) {
      sum[i] += decoded[i];
    }
  }
  const double q = static_cast<double>(codec.wire_count(n)) / n;
  for (std::size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    const double x = v[i];
    const double standard_error = std::fabs(x) * std::sqrt((1 / q - 1) / steps);
    CHECK(std::fabs(sum[i] / steps - x) <= 5 * standard_error + 1e-7 * std::fabs(x));
  }
}

TEST_CASE("randomk: values are v[idx] n/k, scattered back; unbiased = false sends v[idx] itself")
{
  for (bool unbiased : {true, false}) {
    CAPTURE(unbiased);
    randomk codec{.density = 0.1, .unbiased = unbiased};
    const std::size_t n = 1000;
    const auto v = mixed(n);
    const auto wire = encode_values(codec, context(), v);
    const auto idx = indices_of(codec, context(), n);
    const float s = unbiased ? 10.0f : 1.0f;
    CHECK(codec.scale(n) == s);
    for (std::size_t m = 0; m < idx.size(); ++m) {
      CHECK(bits(wire[m]) == bits(v[idx[m]] * s));
    }
    const auto out = decode_values(codec, context(), wire, n);
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (m < idx.size() && idx[m] == i) {
        CHECK(bits(out[i]) == bits(wire[m++]));
      } else {
        CHECK(bits(out[i]) == bits(0.0f));
      }
    }
    // The byte payload carries exactly these values after its header.
    const auto payload = codec_test::encode(codec, context(), v);
    for (std::size_t j = 0; j < wire.size(); ++j) {
      CHECK(bits(load_float(payload, 24 + 4 * j)) == bits(wire[j]));
    }
    // decode_add into zeros: the same values (0 + -0 gives +0)
    std::vector<float> added(n);
    for (std::size_t i = 0; i < n; ++i) {
      added[i] = 0.0f + out[i];
    }
    CHECK(same_bits(codec_test::decode(codec, context(), payload, n), added));
  }
}

TEST_CASE("randomk: summable: decoding the sum of the ranks' values is the sum of their decodes")
{
  randomk codec{.density = 0.03};
  const std::size_t n = 3000;
  std::vector<float> wire_sum(codec.wire_count(n), 0.0f);
  std::vector<float> decoded_sum(n, 0.0f);
  for (int rank = 0; rank < 4; ++rank) {
    const auto v = codec_test::gradient_like(n, 100 + static_cast<std::uint64_t>(rank));
    const auto wire = encode_values(codec, context(2, rank), v);
    for (std::size_t m = 0; m < wire.size(); ++m) {
      wire_sum[m] += wire[m];
    }
    const auto payload = codec_test::encode(codec, context(2, rank), v);
    codec.decode_add(context(2, rank), terse::host_span<const std::byte>(payload),
                     terse::host_span<float>(decoded_sum));
  }
  CHECK(same_bits(decode_values(codec, context(2, 0), wire_sum, n), decoded_sum));
}

TEST_CASE("randomk: edge inputs put no Inf on the wire (scaled values saturate at FLT_MAX)")
{
  for (const auto& input : codec_test::edge_inputs()) {
    CAPTURE(input.name);
    for (double density : {0.01, 0.5, 1.0}) {
      randomk codec{.density = density};
      const auto payload = codec_test::encode(codec, context(), input.values);
      const auto decoded = codec_test::decode(codec, context(), payload, input.values.size());
      const auto idx = indices_of(codec, context(), input.values.size());
      const float s = codec.scale(input.values.size());
      for (std::size_t m = 0; m < idx.size(); ++m) {
        const float x = input.values[idx[m]];
        const double exact = static_cast<double>(x) * s;
        const float expected = std::fabs(exact) > FLT_MAX ? std::copysign(FLT_MAX, x) : x * s;
        CHECK(bits(decoded[idx[m]]) == bits(0.0f + expected));
      }
      for (float d : decoded) {
        CHECK(std::isfinite(d));
      }
    }
  }
  randomk all{.density = 1.0};
  const std::vector<float> v = {FLT_MAX, -FLT_MAX, 1e-45f, -0.0f};
  CHECK(same_bits(codec_test::round_trip(all, context(), v), {FLT_MAX, -FLT_MAX, 1e-45f, 0.0f}));
}

TEST_CASE("randomk: malformed payloads are refused before anything is added")
{
  randomk codec{.density = 0.05};
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{13}, std::size_t{1000}, std::size_t{40000}}) {
    CAPTURE(n);
    const auto valid = codec_test::encode(codec, context(), mixed(n));
    codec_test::check_rejects_malformed(codec, context(), valid, n);
  }
  const std::size_t n = 1000;
  const auto valid = codec_test::encode(codec, context(), mixed(n));
  for (float bad : {INFINITY, -INFINITY, NAN}) {
    auto payload = valid;
    store_float(payload, 24 + 4 * 10, bad);
    expect_malformed(codec, context(), payload, n);
  }
  auto other_k = valid;
  store_u64(other_k, 16, codec.wire_count(n) + 1);
  expect_malformed(codec, context(), other_k, n);
  auto other_flag = valid;
  store_u32(other_flag, 4, 0);
  expect_malformed(codec, context(), other_flag, n);
  randomk other_density{.density = 0.06};
  expect_malformed(other_density, context(), valid, n);
}

TEST_CASE("randomk: non-finite input anywhere is refused with errc::non_finite")
{
  randomk codec{.density = 0.01};
  codec_test::check_rejects_non_finite(codec, context());
  std::vector<float> v(1000, 1.0f);
  v[999] = NAN;
  std::vector<float> wire(codec.wire_count(v.size()));
  CHECK(codec_test::error_code_of([&] {
          codec.encode_values(context(), terse::host_span<const float>(v), terse::host_span<float>(wire));
        }) == terse::errc::non_finite);
}

TEST_CASE("randomk: deterministic per context; ranks send different values at the same indices")
{
  randomk codec{.density = 0.1};
  const auto v = mixed(5000);
  const auto a = codec_test::encode(codec, context(1, 0), v);
  randomk fresh{.density = 0.1};
  CHECK(a == codec_test::encode(fresh, context(1, 0), v));
  CHECK(a == codec_test::encode(codec, context(1, 3), v));  // same indices, same values
  CHECK(a != codec_test::encode(codec, context(2, 0), v));
}

TEST_CASE("randomk: encode_residual equals encode, decode_values and subtract, bit for bit")
{
  for (bool unbiased : {true, false}) {
    for (double density : {0.01, 0.3, 1.0}) {
      for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{17}, std::size_t{4099}}) {
        CAPTURE(unbiased);
        CAPTURE(density);
        CAPTURE(n);
        randomk codec{.density = density, .unbiased = unbiased};
        const auto g = mixed(n, 1);
        auto e_old = codec_test::gradient_like(n, 2, 3e-3f);
        std::vector<float> p(n);
        for (std::size_t i = 0; i < n; ++i) {
          p[i] = g[i] + e_old[i];
        }
        const auto payload = codec_test::encode(codec, context(), p);
        const auto decoded = decode_values(codec, context(), encode_values(codec, context(), p), n);
        std::vector<float> expected(n);
        for (std::size_t i = 0; i < n; ++i) {
          expected[i] = p[i] - decoded[i];
        }
        std::vector<float> e_new(n, 99.0f);
        std::vector<std::byte> out(codec.max_encoded_bytes(n));
        CHECK(codec.encode_residual(context(), terse::host_span<const float>(g), terse::host_span<const float>(e_old),
                                    terse::host_span<float>(e_new), terse::host_span<std::byte>(out)) == out.size());
        CHECK(out == payload);
        CHECK(same_bits(e_new, expected));
        if (!unbiased) {
          for (auto i : indices_of(codec, context(), n)) {
            CHECK(e_new[i] == 0.0f);  // the chosen coordinates are sent whole
          }
        }
        codec.encode_residual(context(), terse::host_span<const float>(g), terse::host_span<const float>(e_old),
                              terse::host_span<float>(e_old), terse::host_span<std::byte>(out));
        CHECK(same_bits(e_old, expected));
      }
    }
  }
}

TEST_CASE("randomk: one step samples once; buffers are reused across steps")
{
  randomk codec{.density = 0.1};
  const std::size_t n = 100000;
  const auto* first = codec.indices(context(1, 0, 1), n).data();
  CHECK(codec.indices(context(1, 2, 1), n).data() == first);  // cached: same set, same storage
  const auto other_bucket = indices_of(codec, context(1, 0, 2), n);
  CHECK(codec.indices(context(1, 0, 1), n).data() == first);  // bucket 2 did not evict bucket 1
  CHECK(codec.indices(context(2, 0, 1), n).data() == first);  // next step: resampled into the same buffer
  CHECK(other_bucket != indices_of(codec, context(1, 0, 1), n));
}

TEST_CASE("randomk: bad configuration and short output are invalid arguments")
{
  for (double density : {0.0, -0.5, 1.5, static_cast<double>(NAN)}) {
    const randomk bad{.density = density};
    CHECK(codec_test::error_code_of([&] { (void)bad.wire_count(10); }) == terse::errc::invalid_argument);
  }
  randomk codec{.density = 0.5};
  const std::vector<float> v(100, 1.0f);
  std::vector<std::byte> out(codec.max_encoded_bytes(100) - 1);
  CHECK(codec_test::error_code_of([&] {
          codec.encode(context(), terse::host_span<const float>(v), terse::host_span<std::byte>(out));
        }) == terse::errc::invalid_argument);
  std::vector<float> wire(3);
  CHECK(codec_test::error_code_of([&] {
          codec.encode_values(context(), terse::host_span<const float>(v), terse::host_span<float>(wire));
        }) == terse::errc::invalid_argument);
  std::ostringstream text;
  text << randomk{.density = 0.25, .unbiased = false};
  CHECK(text.str() == "randomk{density=0.25, unbiased=0}");
}

// compress::powersgd through the byte interface (encode / decode_add): exact
// sizes, what one power step computes, edge inputs, the malformed-payload
// battery and the non-finite policy.
#include <terse/compress/powersgd.hpp>
#include <terse/core/concepts.hpp>
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

#include "codec_test_support.hpp"
#include "powersgd_test_support.hpp"

using terse::compress::powersgd;
using namespace powersgd_test;

static_assert(terse::concepts::compressor<powersgd>);
static_assert(terse::concepts::self_reducing_compressor<powersgd, terse::local_transport>);
static_assert(powersgd::aggregation_kind == terse::aggregation::summable);
static_assert(powersgd::id == terse::wire::codec_id::powersgd);

namespace {

/// P̂ (m×k) and Qᵀ (k×p) as they lie in a payload.
struct factors {
  std::vector<float> p, q;
};

factors read_factors(const std::vector<std::byte>& payload, const terse::detail::powersgd_shape& s)
{
  factors f{std::vector<float>(s.m * s.k), std::vector<float>(s.p * s.k)};
  std::memcpy(f.p.data(), payload.data() + 24, 4 * f.p.size());
  std::memcpy(f.q.data(), payload.data() + 24 + 4 * f.p.size(), 4 * f.q.size());
  return f;
}

void write_float(std::vector<std::byte>& payload, std::size_t index, float value)
{
  std::memcpy(payload.data() + 24 + 4 * index, &value, 4);
}

}  // namespace

TEST_CASE("powersgd shape: p = ceil(sqrt(n)), m = ceil(n / p), k = min(rank, m)")
{
  const powersgd codec;
  struct expected {
    std::size_t n, m, p, k;
  };
  for (const expected e :
       {expected{0, 0, 0, 0}, expected{1, 1, 1, 1}, expected{2, 1, 2, 1}, expected{3, 2, 2, 2}, expected{4, 2, 2, 2},
        expected{5, 2, 3, 2}, expected{10, 3, 4, 2}, expected{4097, 64, 65, 2},
        expected{std::size_t{1} << 24, 4096, 4096, 2}, expected{(std::size_t{1} << 26) + 1, 8192, 8193, 2}}) {
    CAPTURE(e.n);
    const auto s = codec.shape(e.n);
    CHECK(s.m == e.m);
    CHECK(s.p == e.p);
    CHECK(s.k == e.k);
    CHECK(s.m * s.p >= e.n);
    CHECK(s.m * s.p - e.n < std::max<std::size_t>(s.p, 1));
    CHECK(s.full_rows * s.p + s.tail == e.n);
  }
  CHECK(terse::detail::ceil_sqrt(~std::uint64_t{0}) == std::uint64_t{1} << 32);
  CHECK(terse::detail::ceil_sqrt((std::uint64_t{1} << 32) - 1) == std::uint64_t{1} << 16);
  CHECK(terse::detail::ceil_sqrt(std::uint64_t{1} << 62) == std::uint64_t{1} << 31);
}

TEST_CASE("powersgd payload is exactly 24 + 4k(m + p) bytes")
{
  for (const std::uint32_t rank : {1u, 2u, 4u}) {
    powersgd codec{.rank = rank};
    for (const std::size_t n : {0, 1, 2, 3, 10, 100, 1000, 4097, 10007}) {
      CAPTURE(rank);
      CAPTURE(n);
      const auto s = codec.shape(n);
      const std::size_t bytes = 24 + 4 * s.k * (s.m + s.p);
      CHECK(codec.max_encoded_bytes(n) == bytes);
      terse::codec_context ctx;
      ctx.bucket = static_cast<std::uint32_t>(n);
      const auto payload = codec_test::encode(codec, ctx, codec_test::gradient_like(n));
      CHECK(payload.size() == bytes);
    }
  }
  // The ratio dense / factors for a 2^24-value bucket: n / (k(m + p)).
  const std::size_t n = std::size_t{1} << 24;
  CHECK(powersgd{.rank = 2}.max_encoded_bytes(n) - 24 == 4 * n / 1024);
  CHECK(powersgd{.rank = 4}.max_encoded_bytes(n) - 24 == 4 * n / 512);
  CHECK(powersgd{.rank = 1}.max_encoded_bytes(n) - 24 == 4 * n / 2048);
}

TEST_CASE("powersgd encode writes orthonormal P and Q = M^T P, so decode is the projection of M on P")
{
  for (const std::size_t n : {std::size_t{1000}, std::size_t{4096}, std::size_t{10007}}) {
    CAPTURE(n);
    powersgd codec{.rank = 3};
    const auto s = codec.shape(n);
    const auto values = codec_test::gradient_like(n, 5);
    const auto payload = codec_test::encode(codec, {}, values);
    const auto f = read_factors(payload, s);
    CHECK(orthonormality_error(f.p.data(), s.m, s.k) < 1e-5);
    const auto decoded = codec_test::decode(codec, {}, payload, n);
    // decode_add adds P·Qᵀ; with Q = MᵀP̂ the residual M − P̂P̂ᵀM (over the
    // whole zero-padded m×p matrix) is orthogonal to every column of P̂.
    std::vector<double> residual(s.m * s.p);
    double decode_error = 0;
    for (std::size_t i = 0; i < s.m; ++i) {
      for (std::size_t j = 0; j < s.p; ++j) {
        double product = 0;
        for (std::size_t c = 0; c < s.k; ++c) {
          product += static_cast<double>(f.p[i * s.k + c]) * f.q[c * s.p + j];
        }
        const std::size_t at = i * s.p + j;
        residual[at] = (at < n ? values[at] : 0.0) - product;
        if (at < n) {
          decode_error = std::max(decode_error, std::abs(decoded[at] - product));
        }
      }
    }
    CHECK(decode_error < 1e-6 * norm(values));
    for (std::size_t c = 0; c < s.k; ++c) {
      for (std::size_t j = 0; j < s.p; ++j) {
        double dot = 0;
        for (std::size_t i = 0; i < s.m; ++i) {
          dot += f.p[i * s.k + c] * residual[i * s.p + j];
        }
        CHECK(std::abs(dot) < 1e-5 * norm(values));
      }
    }
    CHECK(norm(decoded) <= norm(values) * (1 + 1e-6));
  }
}

TEST_CASE("powersgd recovers a rank-r matrix from one encode")
{
  for (const std::size_t r : {1, 2, 4}) {
    CAPTURE(r);
    powersgd codec{.rank = static_cast<std::uint32_t>(r)};
    const auto m = low_rank(64, 64, r, 11 + r);
    const auto decoded = codec_test::round_trip(codec, {}, m);
    CHECK(relative_error(decoded, m) < 1e-5);
  }
}

TEST_CASE("powersgd encode warm-starts: repeated encodes of one matrix approach its best rank-k approximation")
{
  // Singular values 10, 6, 3, 1, 0.5: the best rank-2 error is |(3, 1, 0.5)|.
  const std::vector<double> sigma{10, 6, 3, 1, 0.5};
  const auto m = with_spectrum(60, 60, sigma, 21);
  const double best = std::sqrt(9.0 + 1.0 + 0.25) / std::sqrt(100.0 + 36 + 9 + 1 + 0.25);
  powersgd codec{.rank = 2};
  terse::codec_context ctx;
  double previous = 2;
  for (int step = 0; step < 30; ++step) {
    ctx.step = static_cast<std::uint64_t>(step);
    const double error = relative_error(codec_test::round_trip(codec, ctx, m), m);
    CAPTURE(step);
    CHECK(error <= previous + 1e-6);  // power iteration never loses ground
    CHECK(error >= best * (1 - 1e-4));
    previous = error;
  }
  CHECK(previous < best * (1 + 1e-3));
}

TEST_CASE("powersgd payloads depend on the shared stream only: same seed same bytes, any rank")
{
  const auto values = codec_test::gradient_like(5000, 3);
  terse::codec_context ctx{.seed = 9, .step = 4, .bucket = 2, .rank = 0, .world = 4};
  powersgd a, b, c, d;
  const auto bytes = codec_test::encode(a, ctx, values);
  CHECK(codec_test::encode(b, ctx, values) == bytes);
  ctx.rank = 3;
  CHECK(codec_test::encode(c, ctx, values) == bytes);  // Q is drawn from the shared stream
  ctx.seed = 10;
  CHECK(codec_test::encode(d, ctx, values) != bytes);  // another starting Q
}

TEST_CASE("powersgd edge inputs encode to payloads that decode to finite values")
{
  for (const auto& input : codec_test::edge_inputs()) {
    CAPTURE(input.name);
    powersgd codec;
    const auto payload = codec_test::encode(codec, {}, input.values);
    CHECK(payload.size() == codec.max_encoded_bytes(input.values.size()));
    const auto decoded = codec_test::decode(codec, {}, payload, input.values.size());
    for (float v : decoded) {
      REQUIRE(std::isfinite(v));
    }
    float largest = 0;
    for (float v : input.values) {
      largest = std::max(largest, std::abs(v));
    }
    if (largest < 1e30f) {  // the projection never lengthens M (saturation aside)
      CHECK(norm(decoded) <= norm(input.values) * (1 + 1e-5) + 1e-30);
    }
  }
  powersgd codec;
  const std::vector<float> one{0.75f};
  CHECK(codec_test::round_trip(codec, {}, one) == one);  // 1×1: exact
  const std::vector<float> zeros(1000, 0.0f);
  CHECK(codec_test::round_trip(codec, {.bucket = 1}, zeros) == zeros);
  // After a zero step the bucket's Q is zero; the next step re-draws it.
  const auto m = low_rank(32, 32, 2, 3);
  CHECK(relative_error(
            codec_test::round_trip(codec, {.step = 1, .bucket = 1}, std::vector<float>(m.begin(), m.begin() + 1000)),
            std::vector<float>(m.begin(), m.begin() + 1000)) < 1);
}

TEST_CASE("powersgd encode of huge values is finite and still close in direction")
{
  // Beyond 2^40 encode works on a scaled copy; FLT_MAX/8 values keep their
  // rank-1 structure exactly as long as the factors fit.
  powersgd codec{.rank = 1};
  std::vector<float> m(100);
  for (std::size_t i = 0; i < m.size(); ++i) {
    m[i] = (i % 10 < 5 ? 1.0f : -1.0f) * std::numeric_limits<float>::max() / 64;  // rank 1, rows equal
  }
  const auto decoded = codec_test::round_trip(codec, {}, m);
  CHECK(relative_error(decoded, m) < 1e-5);
  // All FLT_MAX: the true factors overflow, so Q is saturated; still finite.
  const std::vector<float> biggest(33, std::numeric_limits<float>::max());
  for (float v : codec_test::round_trip(codec, {.bucket = 1}, biggest)) {
    CHECK(std::isfinite(v));
    CHECK(v > 0);
  }
}

TEST_CASE("powersgd decoder rejects malformed payloads and leaves the accumulator alone")
{
  for (const std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{4099}}) {
    CAPTURE(n);
    powersgd codec;
    const auto payload = codec_test::encode(codec, {}, codec_test::gradient_like(n));
    codec_test::check_rejects_malformed(codec, {}, payload, n);
  }
  powersgd codec;
  const std::size_t n = 1000;
  const auto s = codec.shape(n);
  const auto valid = codec_test::encode(codec, {}, codec_test::gradient_like(n));
  const auto rejects = [&](const std::vector<std::byte>& bad, powersgd& decoder) {
    std::vector<float> acc(n, 42.0f);
    CHECK(codec_test::error_code_of([&] {
            decoder.decode_add({}, terse::host_span<const std::byte>(bad), terse::host_span<float>(acc));
          }) == terse::errc::malformed_payload);
    CHECK(acc == std::vector<float>(n, 42.0f));
  };
  SUBCASE("another rank in the header")
  {
    auto bad = valid;
    const std::uint32_t rank = 3;
    std::memcpy(bad.data() + 4, &rank, 4);
    rejects(bad, codec);
  }
  SUBCASE("a decoder of another rank")
  {
    powersgd rank4{.rank = 4};
    rejects(valid, rank4);
  }
  SUBCASE("another shape word")
  {
    auto bad = valid;
    const std::uint64_t shape = (s.m + 1) << 32 | (s.p - 1);
    std::memcpy(bad.data() + 16, &shape, 8);
    rejects(bad, codec);
  }
  SUBCASE("a non-finite factor")
  {
    for (const float special : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      for (const std::size_t at : {std::size_t{0}, s.m * s.k - 1, s.m * s.k, s.factor_count() - 1}) {
        auto bad = valid;
        write_float(bad, at, special);
        rejects(bad, codec);
      }
    }
  }
  SUBCASE("factors whose product could overflow")
  {
    auto bad = valid;
    write_float(bad, 0, 1e20f);          // a P row of norm 1e20
    write_float(bad, s.m * s.k, 1e20f);  // a Q row of norm 1e20: 1e40 > FLT_MAX / 2
    rejects(bad, codec);
    auto fine = valid;
    write_float(fine, 0, 1e15f);
    write_float(fine, s.m * s.k, 1e15f);  // 1e30: accepted
    std::vector<float> acc(n, 0.0f);
    codec.decode_add({}, terse::host_span<const std::byte>(fine), terse::host_span<float>(acc));
  }
}

TEST_CASE("powersgd encode refuses NaN and Inf and keeps its state")
{
  powersgd codec;
  codec_test::check_rejects_non_finite(codec, {});
  // The bucket was never created, and a warmed-up one is left as it was.
  CHECK(codec.state.buckets.empty());
  const auto values = codec_test::gradient_like(4096);
  codec_test::encode(codec, {}, values);
  const std::string before = saved(codec);
  auto bad = values;
  bad[17] = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::byte> out(codec.max_encoded_bytes(bad.size()));
  CHECK(codec_test::error_code_of([&] {
          codec.encode({}, terse::host_span<const float>(bad), terse::host_span<std::byte>(out));
        }) == terse::errc::non_finite);
  CHECK(saved(codec) == before);
}

TEST_CASE("powersgd arguments: output too small, a bucket that changes size, rank 0")
{
  powersgd codec;
  const auto values = codec_test::gradient_like(100);
  std::vector<std::byte> small(codec.max_encoded_bytes(100) - 1);
  CHECK(codec_test::error_code_of([&] {
          codec.encode({}, terse::host_span<const float>(values), terse::host_span<std::byte>(small));
        }) == terse::errc::invalid_argument);
  codec_test::encode(codec, {}, values);
  CHECK(codec_test::error_code_of([&] { codec_test::encode(codec, {}, codec_test::gradient_like(101)); }) ==
        terse::errc::invalid_argument);
  powersgd zero{.rank = 0};
  CHECK(codec_test::error_code_of([&] { codec_test::encode(zero, {}, values); }) == terse::errc::invalid_argument);
  std::ostringstream text;
  text << powersgd{.rank = 4};
  CHECK(text.str() == "powersgd{rank=4}");
}

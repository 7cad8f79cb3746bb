// compress::terngrad: exact bytes against a reference written from the
// format and draw layout descriptions, |decode - v| <= s, unbiasedness over
// many independent steps, independent draws per rank and phase, shards that
// draw what the whole bucket would, edge inputs, malformed payloads,
// non-finite input, fused residual bit-identity, and AVX2 against scalar.
#include <terse/compress/terngrad.hpp>
#include <terse/core/concepts.hpp>

#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <vector>

#include "codec_test_support.hpp"
#include "signs_test_support.hpp"

namespace {

using terse::compress::terngrad;
using namespace signs_test;

static_assert(terse::concepts::compressor<terngrad>);
static_assert(terse::concepts::residual_fusing_compressor<terngrad>);
static_assert(terngrad::aggregation_kind == terse::aggregation::requantizable);

std::size_t ceil_div(std::size_t a, std::size_t b)
{
  return (a + b - 1) / b;
}

// The 16-bit draw of element j, straight from the documented layout.
std::uint32_t documented_draw(const terse::random_stream& stream, std::uint64_t j)
{
  const terse::philox_counter c = stream.block((j / 64) * 8 + j % 8);
  const std::uint32_t word = c.word[(j % 64) / 16];
  return (j / 8) % 2 == 0 ? (word & 0xffffu) : (word >> 16);
}

std::vector<std::byte> reference_payload(const std::vector<float>& v, std::size_t bucket,
                                         const terse::codec_context& ctx)
{
  const std::size_t n = v.size();
  const std::size_t buckets = ceil_div(n, bucket);
  std::vector<std::byte> out(24 + 4 * buckets + ceil_div(n, 4), std::byte{0});
  store_u32(out, 0, 0x5354u | (2u << 16) | (7u << 24));  // magic, version 2, codec terngrad
  store_u32(out, 4, 2);
  store_u64(out, 8, n);
  store_u64(out, 16, bucket);
  const auto stream = ctx.private_stream();
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t begin = b * bucket;
    const std::size_t end = std::min(n, begin + bucket);
    float s = 0.0f;
    for (std::size_t i = begin; i < end; ++i) {
      s = std::max(s, std::fabs(v[i]));
    }
    store_float(out, 24 + 4 * b, s);
    for (std::size_t i = begin; i < end && s > 0.0f; ++i) {
      const double u = (documented_draw(stream, ctx.offset + i) + 0.5) / 65536.0;
      const float r = std::fabs(v[i]) / s;
      if (u < static_cast<double>(r)) {
        const unsigned code = v[i] < 0.0f ? 2u : 1u;
        out[24 + 4 * buckets + i / 4] |= static_cast<std::byte>(code << (2 * (i % 4)));
      }
    }
  }
  return out;
}

const std::size_t bucket_sizes[] = {1, 3, 4, 8, 13, 16, 64, 100, 512};
const std::size_t lengths[] = {0, 1, 3, 4, 5, 8, 63, 64, 65, 127, 511, 512, 513, 4099};

}  // namespace

TEST_CASE("terngrad: payload size is 24 + 4 ceil(n/B) + ceil(n/4) bytes")
{
  for (std::size_t bucket : bucket_sizes) {
    const terngrad codec{.bucket = bucket};
    for (std::size_t n : lengths) {
      CAPTURE(bucket);
      CAPTURE(n);
      CHECK(codec.max_encoded_bytes(n) == 24 + 4 * ceil_div(n, bucket) + ceil_div(n, 4));
      CHECK(codec_test::encode(codec, context(), mixed(n)).size() == codec.max_encoded_bytes(n));
    }
  }
}

TEST_CASE("terngrad: bytes equal the reference encoding of the documented format and draws")
{
  for (std::size_t bucket : bucket_sizes) {
    const terngrad codec{.bucket = bucket};
    for (std::size_t n : lengths) {
      for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{5}, std::uint64_t{64}, std::uint64_t{1000003}}) {
        CAPTURE(bucket);
        CAPTURE(n);
        CAPTURE(offset);
        auto ctx = context(2, 1);
        ctx.offset = offset;
        const auto v = mixed(n, n + bucket);
        CHECK(codec_test::encode(codec, ctx, v) == reference_payload(v, bucket, ctx));
      }
    }
  }
}

TEST_CASE("terngrad: every decoded value is s, -s or 0 with |decode - v| <= s")
{
  const terngrad codec{.bucket = 100};
  const auto v = mixed(5003, 9);
  const auto payload = codec_test::encode(codec, context(), v);
  const auto decoded = codec_test::decode(codec, context(), payload, v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const float s = load_float(payload, 24 + 4 * (i / 100));
    CHECK((decoded[i] == 0.0f || decoded[i] == s || decoded[i] == -s));
    CHECK(std::fabs(decoded[i] - v[i]) <= s);
    if (decoded[i] != 0.0f) {
      CHECK((decoded[i] < 0.0f) == (v[i] < 0.0f));  // never the wrong sign
    }
    if (v[i] == 0.0f) {
      CHECK(decoded[i] == 0.0f);  // u > 0: a zero is never kept
    }
    if (std::fabs(v[i]) == s) {
      CHECK(decoded[i] == v[i]);  // u < 1: the maximum is always kept
    }
  }
}

TEST_CASE("terngrad: unbiased: the mean of 4000 independent steps is within 5 standard errors")
{
  // decode_i is sign(v_i) s with probability p = |v_i|/s (to 2^-17), else 0:
  // mean v_i, variance s|v_i| - v_i^2.
  const terngrad codec{.bucket = 16};
  const std::vector<float> v = {0.5f,    -0.25f, 0.125f, 1.0f,   -1.0f, 0.0f, 0.01f, -0.7f, 0.3f, 0.999f,
                                -0.001f, 0.6f,   0.2f,   -0.45f, 0.05f, 0.8f, 3.0f,  -1.5f, 0.4f, 2.9f};
  const int steps = 4000;
  std::vector<double> sum(v.size(), 0.0);
  for (int t = 0; t < steps; ++t) {
    const auto decoded = codec_test::round_trip(codec, context(static_cast<std::uint64_t>(t)), v);
    for (std::size_t i = 0; i < v.size(); ++i) {
      sum[i] += decoded[i];
    }
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    CAPTURE(i);
    const double s = i < 16 ? 1.0 : 3.0;
    const double x = v[i];
    const double variance = s * std::fabs(x) - x * x;
    const double standard_error = std::sqrt(variance / steps);
    const double bias_bound = s * (0x1p-17 + 0x1p-24);
    CHECK(std::fabs(sum[i] / steps - x) <= 5 * standard_error + bias_bound);
    if (variance == 0.0) {
      CHECK(sum[i] / steps == x);
    }
  }
}

TEST_CASE("terngrad: ranks and phases draw independently; the same context draws the same")
{
  const terngrad codec;
  const auto v = mixed(4096);
  const auto a = codec_test::encode(codec, context(1, 0), v);
  CHECK(a == codec_test::encode(codec, context(1, 0), v));
  CHECK(a != codec_test::encode(codec, context(1, 1), v));
  CHECK(a != codec_test::encode(codec, context(2, 0), v));
  CHECK(a != codec_test::encode(codec, context(1, 0, 6), v));
  auto phase1 = context(1, 0);
  phase1.phase = 1;
  CHECK(a != codec_test::encode(codec, phase1, v));
  // scales are the same everywhere: only the codes differ
  const auto b = codec_test::encode(codec, context(1, 1), v);
  CHECK(std::equal(a.begin(), a.begin() + 24 + 4 * 8, b.begin()));
}

TEST_CASE("terngrad: a shard at ctx.offset draws what the whole bucket would there")
{
  const terngrad codec{.bucket = 64};
  const std::size_t n = 1024;
  const auto v = mixed(n);
  const auto whole = codec_test::encode(codec, context(), v);
  for (std::size_t begin : {std::size_t{0}, std::size_t{256}, std::size_t{576}}) {
    CAPTURE(begin);
    auto ctx = context();
    ctx.offset = begin;
    const std::vector<float> part(v.begin() + static_cast<std::ptrdiff_t>(begin),
                                  v.begin() + static_cast<std::ptrdiff_t>(begin + 256));
    const auto shard = codec_test::encode(codec, ctx, part);
    // scales: 4 buckets; codes: 64 bytes
    CHECK(std::equal(shard.begin() + 24, shard.begin() + 24 + 16,
                     whole.begin() + 24 + static_cast<std::ptrdiff_t>(4 * (begin / 64))));
    CHECK(std::equal(shard.begin() + 24 + 16, shard.end(),
                     whole.begin() + 24 + 4 * 16 + static_cast<std::ptrdiff_t>(begin / 4)));
  }
}

TEST_CASE("terngrad: edge inputs give finite scales and values in {-s, 0, s}")
{
  for (const auto& input : codec_test::edge_inputs()) {
    CAPTURE(input.name);
    for (std::size_t bucket : {std::size_t{1}, std::size_t{7}, std::size_t{512}}) {
      const terngrad codec{.bucket = bucket};
      const auto payload = codec_test::encode(codec, context(), input.values);
      CHECK(payload == reference_payload(input.values, bucket, context()));
      const auto decoded = codec_test::decode(codec, context(), payload, input.values.size());
      for (std::size_t i = 0; i < decoded.size(); ++i) {
        const float s = load_float(payload, 24 + 4 * (i / bucket));
        CHECK(std::isfinite(s));
        CHECK((decoded[i] == 0.0f || std::fabs(decoded[i]) == s));
        CHECK(std::fabs(static_cast<double>(decoded[i]) - input.values[i]) <= s);
      }
    }
  }
  const terngrad codec;
  CHECK(codec_test::round_trip(codec, context(), {FLT_MAX, -FLT_MAX}) == std::vector<float>{FLT_MAX, -FLT_MAX});
  CHECK(codec_test::round_trip(codec, context(), std::vector<float>(700, 0.0f)) == std::vector<float>(700, 0.0f));
}

TEST_CASE("terngrad: malformed payloads are refused before anything is added")
{
  for (std::size_t bucket : {std::size_t{5}, std::size_t{512}}) {
    terngrad codec{.bucket = bucket};
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{13}, std::size_t{1000}, std::size_t{4099}}) {
      CAPTURE(n);
      const auto valid = codec_test::encode(codec, context(), mixed(n));
      codec_test::check_rejects_malformed(codec, context(), valid, n);
    }
    const std::size_t n = 1001;  // last byte: one code, 6 padding bits
    const auto valid = codec_test::encode(codec, context(), mixed(n));
    const std::size_t codes_at = 24 + 4 * ceil_div(n, bucket);
    for (float bad : {-1.0f, -0.0f, INFINITY, NAN}) {
      CAPTURE(bad);
      auto payload = valid;
      store_float(payload, 24, bad);
      expect_malformed(codec, context(), payload, n);
    }
    for (std::size_t at : {codes_at, codes_at + 100, valid.size() - 1}) {
      auto code3 = valid;
      code3[at] |= std::byte{0x03};
      expect_malformed(codec, context(), code3, n);
    }
    auto padding = valid;
    padding.back() |= std::byte{0x40};
    expect_malformed(codec, context(), padding, n);
    auto other_bucket = valid;
    store_u64(other_bucket, 16, bucket * 2);
    expect_malformed(codec, context(), other_bucket, n);
    auto other_param = valid;
    store_u32(other_param, 4, 1);
    expect_malformed(codec, context(), other_param, n);
  }
}

TEST_CASE("terngrad: non-finite input is refused with errc::non_finite")
{
  terngrad codec;
  codec_test::check_rejects_non_finite(codec, context());
  terngrad odd{.bucket = 7};
  codec_test::check_rejects_non_finite(odd, context());
}

TEST_CASE("terngrad: encode_residual equals encode, decode into zeros and subtract, bit for bit")
{
  for (std::size_t bucket : bucket_sizes) {
    const terngrad codec{.bucket = bucket};
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{17}, std::size_t{1000}, std::size_t{4099}}) {
      CAPTURE(bucket);
      CAPTURE(n);
      auto ctx = context(4, 2);
      ctx.offset = 77;
      const auto g = mixed(n, 1);
      auto e_old = codec_test::gradient_like(n, 2, 3e-3f);
      std::vector<float> p(n);
      for (std::size_t i = 0; i < n; ++i) {
        p[i] = g[i] + e_old[i];
      }
      const auto payload = codec_test::encode(codec, ctx, p);
      const auto decoded = codec_test::decode(codec, ctx, payload, n);
      std::vector<float> expected(n);
      for (std::size_t i = 0; i < n; ++i) {
        expected[i] = p[i] - decoded[i];
      }
      std::vector<float> e_new(n, 99.0f);
      std::vector<std::byte> out(codec.max_encoded_bytes(n));
      CHECK(codec.encode_residual(ctx, terse::host_span<const float>(g), terse::host_span<const float>(e_old),
                                  terse::host_span<float>(e_new), terse::host_span<std::byte>(out)) == out.size());
      CHECK(out == payload);
      CHECK(same_bits(e_new, expected));
      codec.encode_residual(ctx, terse::host_span<const float>(g), terse::host_span<const float>(e_old),
                            terse::host_span<float>(e_old), terse::host_span<std::byte>(out));
      CHECK(same_bits(e_old, expected));
    }
  }
}

TEST_CASE("terngrad: the vectorised path writes the same bytes as the scalar path")
{
  CAPTURE(terse::detail::terngrad_has_avx2);
  const auto stream = context(8, 3).private_stream();
  for (std::size_t bucket : {std::size_t{4}, std::size_t{12}, std::size_t{64}, std::size_t{100}, std::size_t{512}}) {
    for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{200}, std::size_t{4099}}) {
      for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{(std::uint64_t{1} << 35) - 9}}) {
        CAPTURE(bucket);
        CAPTURE(n);
        CAPTURE(offset);
        auto v = mixed(n, n);
        if (n > 20) {
          v[3] = FLT_MAX;
          v[4] = -FLT_MAX;
          v[5] = 1e-45f;
        }
        const std::size_t nb = ceil_div(n, bucket);
        std::vector<std::byte> fast(4 * nb + ceil_div(n, 4)), slow(fast.size());
        terse::detail::terngrad_encode_body<false>({.g = v.data()}, stream, offset, n, bucket, fast.data(),
                                                   fast.data() + 4 * nb);
        terse::detail::terngrad_encode_scalar<false>({.g = v.data()}, stream, offset, n, bucket, slow.data(),
                                                     slow.data() + 4 * nb);
        CHECK(fast == slow);
        std::vector<float> acc_fast(n, 0.25f), acc_slow(n, 0.25f);
        terse::detail::terngrad_decode_body(fast.data(), fast.data() + 4 * nb, n, bucket, acc_fast.data());
        terse::detail::terngrad_decode_scalar(fast.data(), fast.data() + 4 * nb, n, bucket, acc_slow.data());
        CHECK(same_bits(acc_fast, acc_slow));
        const auto e_old = codec_test::gradient_like(n, 3, 1e-3f);
        std::vector<float> e_fast(n), e_slow(n);
        terse::detail::terngrad_encode_body<true>({.g = v.data(), .e_old = e_old.data(), .e_new = e_fast.data()},
                                                  stream, offset, n, bucket, fast.data(), fast.data() + 4 * nb);
        terse::detail::terngrad_encode_scalar<true>({.g = v.data(), .e_old = e_old.data(), .e_new = e_slow.data()},
                                                    stream, offset, n, bucket, slow.data(), slow.data() + 4 * nb);
        CHECK(fast == slow);
        CHECK(same_bits(e_fast, e_slow));
      }
    }
  }
  // The 8-block Philox against the scalar generator, also past block 2^32.
  for (std::uint64_t group : {std::uint64_t{0}, std::uint64_t{12345}, (std::uint64_t{1} << 29) + 5}) {
    std::uint32_t fast[64], slow[64];
#if TERSE_QUANTIZER_AVX2
    terse::detail::terngrad_group_draws(terse::detail::philox8_keys(stream), group, fast);
#else
    terse::detail::terngrad_group_scalar(stream, group, fast);
#endif
    terse::detail::terngrad_group_scalar(stream, group, slow);
    CHECK(std::memcmp(fast, slow, sizeof fast) == 0);
    for (int e = 0; e < 64; ++e) {
      CHECK(fast[e] == documented_draw(stream, group * 64 + static_cast<std::uint64_t>(e)));
    }
  }
}

TEST_CASE("terngrad: bad configuration and short output are invalid arguments")
{
  const terngrad none{.bucket = 0};
  CHECK(codec_test::error_code_of([&] { (void)none.max_encoded_bytes(10); }) == terse::errc::invalid_argument);
  const terngrad codec;
  const std::vector<float> v(100, 1.0f);
  std::vector<std::byte> out(codec.max_encoded_bytes(100) - 1);
  CHECK(codec_test::error_code_of([&] {
          codec.encode(context(), terse::host_span<const float>(v), terse::host_span<std::byte>(out));
        }) == terse::errc::invalid_argument);
  std::ostringstream text;
  text << terngrad{.bucket = 64};
  CHECK(text.str() == "terngrad{bucket=64}");
}

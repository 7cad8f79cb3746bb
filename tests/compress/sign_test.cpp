// compress::sign: exact bytes against a reference written from the format
// description, decode = scale * s(v) exactly, scale = mean |v|, the error
// feedback property, edge inputs, malformed payloads, non-finite input,
// fused residual bit-identity, and the AVX2 path against the scalar one.
#include <terse/compress/sign.hpp>
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

using terse::compress::sign;
using namespace signs_test;

static_assert(terse::concepts::compressor<sign>);
static_assert(terse::concepts::residual_fusing_compressor<sign>);
static_assert(!terse::concepts::summable_compressor<sign>);
static_assert(sign::aggregation_kind == terse::aggregation::requantizable);

std::size_t ceil_div(std::size_t a, std::size_t b)
{
  return (a + b - 1) / b;
}

// The payload as the header comment of sign.hpp describes it, written
// independently of the library's loops.
std::vector<std::byte> reference_payload(const std::vector<float>& v, std::size_t bucket)
{
  const std::size_t n = v.size();
  const std::size_t buckets = ceil_div(n, bucket);
  std::vector<std::byte> out(24 + 4 * buckets + ceil_div(n, 8), std::byte{0});
  store_u32(out, 0, 0x5354u | (2u << 16) | (6u << 24));  // magic, version 2, codec sign
  store_u32(out, 4, 1);
  store_u64(out, 8, n);
  store_u64(out, 16, bucket);
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t begin = b * bucket;
    const std::size_t end = std::min(n, begin + bucket);
    double lane[16] = {};
    for (std::size_t i = begin; i < end; ++i) {
      lane[(i - begin) % 16] += std::fabs(static_cast<double>(v[i]));
    }
    double q[4];
    for (int j = 0; j < 4; ++j) {
      q[j] = (lane[j] + lane[j + 4]) + (lane[j + 8] + lane[j + 12]);
    }
    const double mean = ((q[0] + q[2]) + (q[1] + q[3])) / static_cast<double>(end - begin);
    store_float(out, 24 + 4 * b, mean < FLT_MAX ? static_cast<float>(mean) : FLT_MAX);
    for (std::size_t i = begin; i < end; ++i) {
      if (v[i] < 0.0f) {
        out[24 + 4 * buckets + i / 8] |= static_cast<std::byte>(1u << (i % 8));
      }
    }
  }
  return out;
}

const std::size_t bucket_sizes[] = {1, 3, 8, 13, 16, 24, 64, 512, 1000};
const std::size_t lengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 100, 511, 512, 513, 4099};

}  // namespace

TEST_CASE("sign: payload size is 24 + 4 ceil(n/B) + ceil(n/8) bytes")
{
  for (std::size_t bucket : bucket_sizes) {
    const sign codec{.bucket = bucket};
    for (std::size_t n : lengths) {
      CAPTURE(bucket);
      CAPTURE(n);
      CHECK(codec.max_encoded_bytes(n) == 24 + 4 * ceil_div(n, bucket) + ceil_div(n, 8));
      const auto payload = codec_test::encode(codec, context(), mixed(n));
      CHECK(payload.size() == codec.max_encoded_bytes(n));
    }
  }
  CHECK(sign{}.max_encoded_bytes(std::size_t{1} << 24) == 24 + 4 * (std::size_t{1} << 15) + (std::size_t{1} << 21));
}

TEST_CASE("sign: bytes equal the reference encoding of the documented format")
{
  for (std::size_t bucket : bucket_sizes) {
    const sign codec{.bucket = bucket};
    for (std::size_t n : lengths) {
      CAPTURE(bucket);
      CAPTURE(n);
      const auto v = mixed(n, n + bucket);
      CHECK(codec_test::encode(codec, context(), v) == reference_payload(v, bucket));
    }
  }
}

TEST_CASE("sign: decode is scale * s(v) exactly, with scale the mean |v| of the bucket")
{
  for (std::size_t bucket : {std::size_t{1}, std::size_t{13}, std::size_t{64}, std::size_t{512}}) {
    const sign codec{.bucket = bucket};
    const auto v = mixed(3001, bucket);
    const auto payload = codec_test::encode(codec, context(), v);
    const auto decoded = codec_test::decode(codec, context(), payload, v.size());
    for (std::size_t b = 0; b * bucket < v.size(); ++b) {
      const std::size_t begin = b * bucket;
      const std::size_t end = std::min(v.size(), begin + bucket);
      long double l1 = 0;
      for (std::size_t i = begin; i < end; ++i) {
        l1 += std::fabs(static_cast<long double>(v[i]));
      }
      const float scale = load_float(payload, 24 + 4 * b);
      const auto mean = static_cast<double>(l1 / static_cast<long double>(end - begin));
      CHECK(std::fabs(static_cast<double>(scale) - mean) <= 1e-7 * mean);  // rounding to float only
      for (std::size_t i = begin; i < end; ++i) {
        // zeros (both signs) decode to +scale; negatives to -scale
        const float expected = v[i] < 0.0f ? -scale : scale;
        CHECK(bits(decoded[i]) == bits(0.0f + expected));
      }
    }
  }
  // A constant bucket keeps its value exactly; mixed signs keep the mean magnitude.
  const sign codec{.bucket = 4};
  CHECK(codec_test::round_trip(codec, context(), {0.125f, 0.125f, 0.125f, 0.125f}) ==
        std::vector<float>{0.125f, 0.125f, 0.125f, 0.125f});
  CHECK(codec_test::round_trip(codec, context(), {1.0f, -2.0f, 0.0f, -1.0f}) ==
        std::vector<float>{1.0f, -1.0f, 1.0f, -1.0f});
}

TEST_CASE("sign: ||v - C(v)||^2 = ||v||^2 - ||v||_1^2 / B per bucket (the EF-signSGD contraction)")
{
  const sign codec{.bucket = 256};
  const auto v = codec_test::gradient_like(4096, 11);
  const auto decoded = codec_test::round_trip(codec, context(), v);
  for (std::size_t begin = 0; begin < v.size(); begin += 256) {
    double l1 = 0, l2 = 0, err = 0;
    for (std::size_t i = begin; i < begin + 256; ++i) {
      l1 += std::fabs(static_cast<double>(v[i]));
      l2 += static_cast<double>(v[i]) * v[i];
      err += (static_cast<double>(v[i]) - decoded[i]) * (static_cast<double>(v[i]) - decoded[i]);
    }
    const double delta = l1 * l1 / (256.0 * l2);
    CHECK(delta > 0.5);  // near 2/pi for normal-like values
    CHECK(err == doctest::Approx((1.0 - delta) * l2).epsilon(1e-5));
  }
}

TEST_CASE("sign: with error feedback the mean of what is sent converges to the gradient")
{
  // Without feedback every step sends C(g), off by sqrt(1 - delta) ||g||.
  // With it, sum_t C(p_t) = T g - e_T, so the mean is off by ||e_T|| / T,
  // and the residual obeys Karimireddy et al.'s Lemma 3 bound
  // ||e_t||^2 <= 4 (1 - delta) / delta^2 ||g||^2 for a delta-approximate C
  // (delta: the smallest ||p_j||_1^2 / (B ||p_j||_2^2) over buckets seen).
  const std::size_t bucket = 128;
  const sign codec{.bucket = bucket};
  const std::size_t n = 1024;
  const auto g = codec_test::gradient_like(n, 5);
  const auto once = codec_test::round_trip(codec, context(), g);
  std::vector<float> e(n, 0.0f), e_next(n), sent_sum(n, 0.0f);
  std::vector<std::byte> payload(codec.max_encoded_bytes(n));
  double g_norm2 = 0;
  for (float x : g) {
    g_norm2 += static_cast<double>(x) * x;
  }
  const int steps = 400;
  double delta = 1.0;
  for (int t = 0; t < steps; ++t) {
    for (std::size_t begin = 0; begin < n; begin += bucket) {
      double l1 = 0, l2 = 0;
      for (std::size_t i = begin; i < begin + bucket; ++i) {
        const double p = static_cast<double>(g[i]) + e[i];
        l1 += std::fabs(p);
        l2 += p * p;
      }
      delta = std::min(delta, l1 * l1 / (static_cast<double>(bucket) * l2));
    }
    codec.encode_residual(context(t), terse::host_span<const float>(g), terse::host_span<const float>(e),
                          terse::host_span<float>(e_next), terse::host_span<std::byte>(payload));
    codec.decode_add(context(t), terse::host_span<const std::byte>(payload), terse::host_span<float>(sent_sum));
    e.swap(e_next);
    double e_norm2 = 0;
    for (float x : e) {
      e_norm2 += static_cast<double>(x) * x;
    }
    CHECK(e_norm2 <= 4 * (1 - delta) / (delta * delta) * g_norm2);
  }
  double e_norm2 = 0, ef_gap = 0, plain_gap = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double mean = sent_sum[i] / steps;
    e_norm2 += static_cast<double>(e[i]) * e[i];
    ef_gap += (mean - g[i]) * (mean - g[i]);
    plain_gap += (static_cast<double>(once[i]) - g[i]) * (static_cast<double>(once[i]) - g[i]);
  }
  CHECK(delta > 0.0);
  CHECK(std::sqrt(ef_gap) <= 1.001 * std::sqrt(e_norm2) / steps + 1e-7);
  CHECK(std::sqrt(ef_gap) < 0.1 * std::sqrt(plain_gap));
}

TEST_CASE("sign: edge inputs give finite scales and decode to scale * s(v)")
{
  for (const auto& input : codec_test::edge_inputs()) {
    CAPTURE(input.name);
    for (std::size_t bucket : {std::size_t{1}, std::size_t{7}, std::size_t{512}}) {
      const sign codec{.bucket = bucket};
      const auto payload = codec_test::encode(codec, context(), input.values);
      CHECK(payload == reference_payload(input.values, bucket));
      const auto decoded = codec_test::decode(codec, context(), payload, input.values.size());
      for (std::size_t i = 0; i < decoded.size(); ++i) {
        const float scale = load_float(payload, 24 + 4 * (i / bucket));
        CHECK(std::isfinite(scale));
        CHECK(std::fabs(decoded[i]) == scale);
        if (scale != 0.0f) {
          CHECK((input.values[i] < 0.0f) == (decoded[i] < 0.0f));
        }
      }
    }
  }
  const sign codec;
  CHECK(codec_test::encode(codec, context(), {}).size() == 24);
  CHECK(codec_test::round_trip(codec, context(), {FLT_MAX, -FLT_MAX}) == std::vector<float>{FLT_MAX, -FLT_MAX});
  CHECK(codec_test::round_trip(codec, context(), std::vector<float>(1000, 0.0f)) == std::vector<float>(1000, 0.0f));
}

TEST_CASE("sign: malformed payloads are refused before anything is added")
{
  for (std::size_t bucket : {std::size_t{5}, std::size_t{512}}) {
    sign codec{.bucket = bucket};
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{13}, std::size_t{1000}, std::size_t{4099}}) {
      CAPTURE(n);
      const auto valid = codec_test::encode(codec, context(), mixed(n));
      codec_test::check_rejects_malformed(codec, context(), valid, n);
    }
    const std::size_t n = 1003;  // last byte has 5 padding bits
    const auto valid = codec_test::encode(codec, context(), mixed(n));
    const std::size_t bits_at = 24 + 4 * ceil_div(n, bucket);
    for (float bad : {-1.0f, -0.0f, INFINITY, -INFINITY, NAN}) {
      CAPTURE(bad);
      auto payload = valid;
      store_float(payload, 24 + 4 * (ceil_div(n, bucket) - 1), bad);
      expect_malformed(codec, context(), payload, n);
    }
    auto padding = valid;
    padding.back() |= std::byte{0x80};
    expect_malformed(codec, context(), padding, n);
    auto other_bucket = valid;
    store_u64(other_bucket, 16, bucket + 1);
    expect_malformed(codec, context(), other_bucket, n);
    auto other_param = valid;
    store_u32(other_param, 4, 2);
    expect_malformed(codec, context(), other_param, n);
    CHECK(bits_at + ceil_div(n, 8) == valid.size());
  }
}

TEST_CASE("sign: non-finite input is refused with errc::non_finite")
{
  sign codec;
  codec_test::check_rejects_non_finite(codec, context());
  sign small{.bucket = 7};
  codec_test::check_rejects_non_finite(small, context());
  std::vector<float> g(100, 1.0f), e(100, 0.0f), e_new(100);
  e[57] = INFINITY;
  std::vector<std::byte> out(codec.max_encoded_bytes(100));
  CHECK(codec_test::error_code_of([&] {
          codec.encode_residual(context(), terse::host_span<const float>(g), terse::host_span<const float>(e),
                                terse::host_span<float>(e_new), terse::host_span<std::byte>(out));
        }) == terse::errc::non_finite);
}

TEST_CASE("sign: deterministic, and independent of rank, step and offset (no randomness)")
{
  const sign codec;
  const auto v = mixed(5000);
  const auto a = codec_test::encode(codec, context(1, 0), v);
  CHECK(a == codec_test::encode(codec, context(1, 0), v));
  CHECK(a == codec_test::encode(codec, context(9, 3, 2), v));
}

TEST_CASE("sign: decode_add adds to what the accumulator holds")
{
  const sign codec{.bucket = 16};
  const auto v = mixed(100);
  const auto payload = codec_test::encode(codec, context(), v);
  const auto decoded = codec_test::decode(codec, context(), payload, v.size());
  std::vector<float> acc(v.size(), 1.5f);
  codec.decode_add(context(), terse::host_span<const std::byte>(payload), terse::host_span<float>(acc));
  for (std::size_t i = 0; i < v.size(); ++i) {
    CHECK(acc[i] == 1.5f + decoded[i]);
  }
}

TEST_CASE("sign: encode_residual equals encode, decode into zeros and subtract, bit for bit")
{
  for (std::size_t bucket : bucket_sizes) {
    const sign codec{.bucket = bucket};
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{17}, std::size_t{1000}, std::size_t{4099}}) {
      CAPTURE(bucket);
      CAPTURE(n);
      const auto g = mixed(n, 1);
      auto e_old = codec_test::gradient_like(n, 2, 3e-3f);
      std::vector<float> p(n);
      for (std::size_t i = 0; i < n; ++i) {
        p[i] = g[i] + e_old[i];
      }
      const auto payload = codec_test::encode(codec, context(), p);
      const auto decoded = codec_test::decode(codec, context(), payload, n);
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
      // in place: e_new aliasing e_old
      codec.encode_residual(context(), terse::host_span<const float>(g), terse::host_span<const float>(e_old),
                            terse::host_span<float>(e_old), terse::host_span<std::byte>(out));
      CHECK(same_bits(e_old, expected));
    }
  }
}

TEST_CASE("sign: the vectorised path writes the same bytes as the scalar path")
{
  using terse::detail::sign_io;
  CAPTURE(terse::detail::sign_has_avx2);
  for (std::size_t bucket : {std::size_t{8}, std::size_t{16}, std::size_t{24}, std::size_t{512}}) {
    for (std::size_t n : {std::size_t{1}, std::size_t{15}, std::size_t{16}, std::size_t{33}, std::size_t{4099}}) {
      CAPTURE(bucket);
      CAPTURE(n);
      auto v = mixed(n, n);
      if (n > 20) {
        v[3] = FLT_MAX;
        v[4] = -FLT_MAX;
        v[5] = 1e-45f;
      }
      const std::size_t nb = ceil_div(n, bucket);
      std::vector<std::byte> fast(4 * nb + ceil_div(n, 8)), slow(fast.size());
      terse::detail::sign_encode_body<false>({.g = v.data()}, n, bucket, fast.data(), fast.data() + 4 * nb);
      terse::detail::sign_encode_scalar<false>({.g = v.data()}, n, bucket, slow.data(), slow.data() + 4 * nb);
      CHECK(fast == slow);
      std::vector<float> acc_fast(n, 0.25f), acc_slow(n, 0.25f);
      terse::detail::sign_decode_body(fast.data(), fast.data() + 4 * nb, n, bucket, acc_fast.data());
      terse::detail::sign_decode_scalar(fast.data(), fast.data() + 4 * nb, n, bucket, acc_slow.data());
      CHECK(same_bits(acc_fast, acc_slow));
      const auto e_old = codec_test::gradient_like(n, 3, 1e-3f);
      std::vector<float> e_fast(n), e_slow(n);
      terse::detail::sign_encode_body<true>({.g = v.data(), .e_old = e_old.data(), .e_new = e_fast.data()}, n, bucket,
                                            fast.data(), fast.data() + 4 * nb);
      terse::detail::sign_encode_scalar<true>({.g = v.data(), .e_old = e_old.data(), .e_new = e_slow.data()}, n, bucket,
                                              slow.data(), slow.data() + 4 * nb);
      CHECK(fast == slow);
      CHECK(same_bits(e_fast, e_slow));
    }
  }
}

TEST_CASE("sign: bad configuration and short output are invalid arguments")
{
  const sign none{.bucket = 0};
  CHECK(codec_test::error_code_of([&] { (void)none.max_encoded_bytes(10); }) == terse::errc::invalid_argument);
  const sign codec;
  const std::vector<float> v(100, 1.0f);
  std::vector<std::byte> out(codec.max_encoded_bytes(100) - 1);
  CHECK(codec_test::error_code_of([&] {
          codec.encode(context(), terse::host_span<const float>(v), terse::host_span<std::byte>(out));
        }) == terse::errc::invalid_argument);
  std::ostringstream text;
  text << sign{.bucket = 64};
  CHECK(text.str() == "sign{bucket=64}");
}

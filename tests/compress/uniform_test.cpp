// compress::uniform<Bits>: exact bytes against a reference written from the
// format description, the one-step error bound, unbiasedness over many
// steps, edge inputs, malformed payloads, non-finite input, determinism and
// rank independence, the fused residual, and sharded encoding.
#include <terse/compress/detail/quantizer_engine.hpp>
#include <terse/compress/detail/uniform_host.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/core/concepts.hpp>

#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <vector>

#include "codec_test_support.hpp"
#include "quantizers_test_support.hpp"

namespace {

using terse::compress::uniform;
using namespace quantizers_test;

static_assert(terse::concepts::compressor<uniform<8>>);
static_assert(terse::concepts::residual_fusing_compressor<uniform<4>>);
static_assert(!terse::concepts::summable_compressor<uniform<2>>);
static_assert(uniform<8>::aggregation_kind == terse::aggregation::requantizable);

const std::size_t lengths[] = {0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 127, 128, 129, 511, 512, 513, 1000, 4099};
const std::uint32_t buckets[] = {1, 3, 8, 13, 64, 100, 512, 1000};

terse::codec_context context(std::uint64_t step = 7, int rank = 1)
{
  return terse::codec_context{.seed = 0x5eed, .step = step, .bucket = 3, .rank = rank, .world = 4};
}

}  // namespace

#define UNIFORM_TYPES uniform<8>, uniform<4>, uniform<2>

TEST_CASE_TEMPLATE("uniform: payload size is 24 + 8 ceil(n/B) + ceil(n b/8) bytes", Codec, UNIFORM_TYPES)
{
  for (std::uint32_t bucket : buckets) {
    const Codec codec{.bucket = bucket};
    for (std::size_t n : lengths) {
      CAPTURE(bucket);
      CAPTURE(n);
      const std::size_t expected = 24 + 8 * ceil_div(n, bucket) + ceil_div(n * Codec::bits, 8);
      CHECK(codec.max_encoded_bytes(n) == expected);
      const auto values = codec_test::gradient_like(n, 3);
      CHECK(codec_test::encode(codec, context(), values).size() == expected);
    }
  }
}

TEST_CASE_TEMPLATE("uniform: bytes equal the reference written from the format description", Codec, UNIFORM_TYPES)
{
  for (std::uint32_t bucket : buckets) {
    const Codec codec{.bucket = bucket};
    for (std::size_t n : lengths) {
      for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{64}, std::uint64_t{37}}) {
        CAPTURE(bucket);
        CAPTURE(n);
        CAPTURE(offset);
        auto ctx = context();
        ctx.offset = offset;
        const auto values = codec_test::gradient_like(n, 5);
        CHECK(codec_test::encode(codec, ctx, values) == reference_uniform(values, bucket, Codec::bits, ctx));
      }
    }
  }
}

TEST_CASE_TEMPLATE("uniform: every value decodes within one step of its bucket", Codec, UNIFORM_TYPES)
{
  constexpr float levels = static_cast<float>((1u << Codec::bits) - 1);
  for (std::uint32_t bucket : {8u, 512u, 1000u}) {
    const Codec codec{.bucket = bucket};
    const auto values = codec_test::gradient_like(10007, 11, 3.0f);
    const auto decoded = codec_test::round_trip(codec, context(), values);
    for (std::size_t i = 0; i < values.size(); ++i) {
      const auto [lo, hi] = bucket_range(values, bucket, i / bucket);
      const float step = (hi - lo) / levels;
      // |v - decode| <= step, up to float rounding of the step itself
      CHECK(std::fabs(values[i] - decoded[i]) <= step * (1.0f + 0x1p-20f));
      CHECK(decoded[i] >= lo);
      CHECK(decoded[i] <= hi);
    }
  }
}

TEST_CASE_TEMPLATE("uniform: decoding is unbiased over 2000 steps", Codec, UNIFORM_TYPES)
{
  // The mean of N independent decodes must be within 5 standard errors of
  // v, where a stochastic rounding between levels a step apart has variance
  // step^2 f (1 - f) (f: where v sits between them), plus the documented
  // bias bound of 2^-16 step.
  constexpr std::size_t steps = 2000;
  constexpr double levels = static_cast<double>((1u << Codec::bits) - 1);
  const std::uint32_t bucket = 16;
  const Codec codec{.bucket = bucket};
  const auto values = unbiased_probe(48);
  std::vector<double> sum(values.size(), 0.0);
  for (std::uint64_t s = 0; s < steps; ++s) {
    const auto decoded = codec_test::round_trip(codec, context(s, 2), values);
    for (std::size_t i = 0; i < values.size(); ++i) {
      sum[i] += decoded[i];
    }
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto [lo, hi] = bucket_range(values, bucket, i / bucket);
    const double step = (static_cast<double>(hi) - lo) / levels;
    const double position = step > 0 ? (values[i] - lo) / step : 0.0;
    const double f = position - std::floor(position);
    const double standard_error = step * std::sqrt(f * (1 - f) / steps);
    CAPTURE(i);
    CHECK(std::fabs(sum[i] / steps - values[i]) <= 5 * standard_error + 0x1p-16 * step + 1e-6 * std::fabs(values[i]));
  }
}

TEST_CASE_TEMPLATE("uniform: edge inputs decode finite, within their range, constant buckets exactly", Codec,
                   UNIFORM_TYPES)
{
  for (const auto& input : codec_test::edge_inputs()) {
    CAPTURE(input.name);
    for (std::uint32_t bucket : {1u, 7u, 512u}) {
      const Codec codec{.bucket = bucket};
      const auto payload = codec_test::encode(codec, context(), input.values);
      CHECK(payload.size() == codec.max_encoded_bytes(input.values.size()));
      CHECK(payload == reference_uniform(input.values, bucket, Codec::bits, context()));
      const auto decoded = codec_test::decode(codec, context(), payload, input.values.size());
      for (std::size_t i = 0; i < decoded.size(); ++i) {
        REQUIRE(std::isfinite(decoded[i]));
        const auto [lo, hi] = bucket_range(input.values, bucket, i / bucket);
        CHECK(decoded[i] >= lo);
        CHECK(decoded[i] <= hi);
        if (lo == hi) {
          CHECK(decoded[i] == input.values[i]);
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("uniform: malformed payloads are rejected and leave the accumulator alone", Codec, UNIFORM_TYPES)
{
  const Codec codec{.bucket = 64};
  for (std::size_t n : {1u, 100u, 1000u}) {
    const auto values = codec_test::gradient_like(n, 2);
    const auto valid = codec_test::encode(codec, context(), values);
    codec_test::check_rejects_malformed(codec, context(), valid, n);

    const auto rejects = [&](std::vector<std::byte> bad, const char* what) {
      CAPTURE(what);
      std::vector<float> acc(n, 42.0f);
      CHECK(codec_test::error_code_of([&] {
              codec.decode_add(context(), terse::host_span<const std::byte>(bad), terse::host_span<float>(acc));
            }) == terse::errc::malformed_payload);
      CHECK(acc == std::vector<float>(n, 42.0f));
    };
    auto other_bits = valid;
    other_bits[4] = static_cast<std::byte>(Codec::bits == 8 ? 4 : 8);
    rejects(other_bits, "another bit width");
    auto other_bucket = valid;
    other_bucket[16] = std::byte{63};
    rejects(other_bucket, "another bucket size");
    const std::size_t last_scale = 24 + 8 * (ceil_div(n, 64) - 1);
    for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
      auto nan_scale = valid;
      std::memcpy(nan_scale.data() + last_scale + 4, &bad, 4);
      rejects(nan_scale, "a non-finite max");
      std::memcpy(nan_scale.data() + 24, &bad, 4);
      rejects(nan_scale, "a non-finite min");
    }
    auto inverted = valid;
    const float big = 1e30f;
    std::memcpy(inverted.data() + 24, &big, 4);  // min above max
    rejects(inverted, "min above max");
    if ((n * Codec::bits) % 8 != 0) {
      auto padding = valid;
      padding.at(padding.size() - 1) |= std::byte{0x80};  // at(): g++ -O2 -mavx2 sees a possible index -1 in back()
      rejects(padding, "nonzero padding bits");
    }
  }
}

TEST_CASE_TEMPLATE("uniform: NaN or Inf input is refused with errc::non_finite", Codec, UNIFORM_TYPES)
{
  const Codec codec{};
  codec_test::check_rejects_non_finite(codec, context());
  // residual input that overflows to Inf
  const std::vector<float> g(600, FLT_MAX), e_old(600, FLT_MAX);
  std::vector<float> e_new(600);
  std::vector<std::byte> out(codec.max_encoded_bytes(600));
  CHECK(codec_test::error_code_of([&] { codec.encode_residual(context(), g, e_old, e_new, out); }) ==
        terse::errc::non_finite);
}

TEST_CASE_TEMPLATE("uniform: draws depend on seed, step, bucket, rank and phase only", Codec, UNIFORM_TYPES)
{
  const Codec codec{};
  const auto values = codec_test::gradient_like(4096, 9);
  const auto base = codec_test::encode(codec, context(), values);
  CHECK(codec_test::encode(codec, context(), values) == base);  // deterministic
  auto other = context();
  other.rank = 2;
  CHECK(codec_test::encode(codec, other, values) != base);
  other = context();
  other.step = 8;
  CHECK(codec_test::encode(codec, other, values) != base);
  other = context();
  other.phase = 1;
  CHECK(codec_test::encode(codec, other, values) != base);
  other = context();
  other.bucket = 4;
  CHECK(codec_test::encode(codec, other, values) != base);
  other = context();
  other.world = 16;  // the world size does not enter the draws
  CHECK(codec_test::encode(codec, other, values) == base);
}

TEST_CASE_TEMPLATE("uniform: encode_residual equals encode, decode and subtract, bit for bit", Codec, UNIFORM_TYPES)
{
  for (std::uint32_t bucket : {13u, 512u}) {
    const Codec codec{.bucket = bucket};
    for (std::size_t n : {1u, 100u, 4099u}) {
      const auto g = codec_test::gradient_like(n, 4);
      const auto e_old = codec_test::gradient_like(n, 5, 1e-3f);
      std::vector<float> p(n), e_new(n);
      for (std::size_t i = 0; i < n; ++i) {
        p[i] = g[i] + e_old[i];
      }
      std::vector<std::byte> fused(codec.max_encoded_bytes(n));
      CHECK(codec.encode_residual(context(), g, e_old, e_new, fused) == fused.size());
      const auto plain = codec_test::encode(codec, context(), p);
      CHECK(fused == plain);
      const auto decoded = codec_test::decode(codec, context(), plain, n);
      std::size_t differ = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const float expected = p[i] - decoded[i];
        differ += std::memcmp(&expected, &e_new[i], 4) != 0 ? 1 : 0;
      }
      CHECK(differ == 0);
    }
  }
}

TEST_CASE_TEMPLATE("uniform: a shard at a bucket boundary encodes as the whole does", Codec, UNIFORM_TYPES)
{
  const std::uint32_t bucket = 64;
  const Codec codec{.bucket = bucket};
  const auto whole_values = codec_test::gradient_like(1000, 6);
  const auto whole = codec_test::encode(codec, context(), whole_values);
  const std::size_t buckets_total = ceil_div(1000, bucket);
  for (std::size_t first_bucket : {1u, 3u, 7u}) {
    const std::size_t first = first_bucket * bucket;
    const std::vector<float> shard_values(whole_values.begin() + static_cast<std::ptrdiff_t>(first),
                                          whole_values.end());
    auto ctx = context();
    ctx.offset = first;
    const auto shard = codec_test::encode(codec, ctx, shard_values);
    // scales of the shard's buckets
    CHECK(std::equal(shard.begin() + 24,
                     shard.begin() + 24 + 8 * static_cast<std::ptrdiff_t>(buckets_total - first_bucket),
                     whole.begin() + 24 + 8 * static_cast<std::ptrdiff_t>(first_bucket)));
    // fields: the whole's from bit first * bits on
    const std::size_t whole_fields = 24 + 8 * buckets_total;
    const std::size_t shard_fields = 24 + 8 * (buckets_total - first_bucket);
    CHECK(std::equal(shard.begin() + static_cast<std::ptrdiff_t>(shard_fields), shard.end(),
                     whole.begin() + static_cast<std::ptrdiff_t>(whole_fields + first * Codec::bits / 8)));
  }
}

TEST_CASE("uniform: a shard at any offset draws what the whole draws at the same indices")
{
  // One rule for every element, so the fields depend on the draws alone.
  const auto rule = terse::detail::uniform_host_rule<8>(terse::detail::uniform_rule::make(-1.0f, 1.0f, 255));
  const terse::detail::quantizer_draws draws(context().private_stream());
  const std::vector<float> values(700, 0.3f);  // between two levels: the draw decides
  std::vector<std::uint8_t> whole(700), shard(700);
  terse::detail::quantize<decltype(rule), false>(rule, draws, {values.data(), nullptr, nullptr}, 700, 0,
                                                 {whole.data(), 0});
  for (std::size_t first : {1u, 37u, 64u, 100u, 511u}) {
    CAPTURE(first);
    terse::detail::quantize<decltype(rule), false>(rule, draws, {values.data() + first, nullptr, nullptr}, 700 - first,
                                                   first, {shard.data(), 0});
    CHECK(std::equal(shard.begin(), shard.begin() + static_cast<std::ptrdiff_t>(700 - first),
                     whole.begin() + static_cast<std::ptrdiff_t>(first)));
  }
}

TEST_CASE("uniform: parameters print and bucket 0 is refused")
{
  std::ostringstream os;
  os << uniform<4>{.bucket = 256};
  CHECK(os.str() == "uniform<4>{bucket=256}");
  const uniform<8> zero{.bucket = 0};
  CHECK(codec_test::error_code_of([&] { (void)zero.max_encoded_bytes(10); }) == terse::errc::invalid_argument);
  const uniform<8> codec{};
  std::vector<std::byte> small(codec.max_encoded_bytes(100) - 1);
  const std::vector<float> values(100, 1.0f);
  CHECK(codec_test::error_code_of([&] { codec.encode(context(), values, small); }) == terse::errc::invalid_argument);
}

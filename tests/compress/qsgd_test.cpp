// compress::qsgd<Levels>: exact bytes against a reference written from the
// format description (canonical norm included), the one-level error bound,
// unbiasedness over many steps, edge inputs, malformed payloads, non-finite
// input, determinism, the fused residual, and sharded encoding.
#include <terse/compress/qsgd.hpp>
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

using terse::compress::qsgd;
using namespace quantizers_test;

static_assert(terse::concepts::compressor<qsgd<7>>);
static_assert(terse::concepts::residual_fusing_compressor<qsgd<127>>);
static_assert(qsgd<1>::bits == 2 && qsgd<3>::bits == 3 && qsgd<7>::bits == 4 && qsgd<15>::bits == 5 &&
              qsgd<31>::bits == 6 && qsgd<63>::bits == 7 && qsgd<127>::bits == 8);
static_assert(qsgd<15>::aggregation_kind == terse::aggregation::requantizable);

const std::size_t lengths[] = {0, 1, 2, 7, 8, 9, 31, 32, 33, 64, 65, 129, 512, 513, 1000, 4099};
const std::uint32_t buckets[] = {1, 3, 8, 33, 64, 512, 1000};

terse::codec_context context(std::uint64_t step = 7, int rank = 1)
{
  return terse::codec_context{.seed = 0xabc, .step = step, .bucket = 9, .rank = rank, .world = 4};
}

}  // namespace

#define QSGD_TYPES qsgd<1>, qsgd<3>, qsgd<7>, qsgd<15>, qsgd<127>

TEST_CASE_TEMPLATE("qsgd: payload size is 24 + 4 ceil(n/B) + ceil(n b/8) bytes", Codec, QSGD_TYPES)
{
  for (std::uint32_t bucket : buckets) {
    const Codec codec{.bucket = bucket};
    for (std::size_t n : lengths) {
      CAPTURE(bucket);
      CAPTURE(n);
      const std::size_t expected = 24 + 4 * ceil_div(n, bucket) + ceil_div(n * Codec::bits, 8);
      CHECK(codec.max_encoded_bytes(n) == expected);
      CHECK(codec_test::encode(codec, context(), codec_test::gradient_like(n, 3)).size() == expected);
    }
  }
}

TEST_CASE_TEMPLATE("qsgd: bytes equal the reference written from the format description", Codec, QSGD_TYPES)
{
  for (std::uint32_t bucket : buckets) {
    const Codec codec{.bucket = bucket};
    for (std::size_t n : lengths) {
      for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{128}, std::uint64_t{5}}) {
        CAPTURE(bucket);
        CAPTURE(n);
        CAPTURE(offset);
        auto ctx = context();
        ctx.offset = offset;
        const auto values = codec_test::gradient_like(n, 8);
        CHECK(codec_test::encode(codec, ctx, values) == reference_qsgd(values, bucket, Codec::levels, ctx));
      }
    }
  }
}

TEST_CASE("qsgd: the stored norm is the l2 norm of the bucket")
{
  const qsgd<7> codec{.bucket = 100};
  for (float scale : {1e-30f, 1e-3f, 1.0f, 1e20f}) {
    const auto values = codec_test::gradient_like(1000, 4, scale);
    const auto payload = codec_test::encode(codec, context(), values);
    for (std::size_t b = 0; b < 10; ++b) {
      double sum = 0;
      for (std::size_t i = b * 100; i < (b + 1) * 100; ++i) {
        sum += static_cast<double>(values[i]) * values[i];
      }
      float stored;
      std::memcpy(&stored, payload.data() + 24 + 4 * b, 4);
      CHECK(stored == doctest::Approx(std::sqrt(sum)).epsilon(1e-6));
    }
  }
}

TEST_CASE_TEMPLATE("qsgd: every value decodes within one level of its bucket", Codec, QSGD_TYPES)
{
  for (std::uint32_t bucket : {8u, 512u}) {
    const Codec codec{.bucket = bucket};
    const auto values = codec_test::gradient_like(5003, 12, 2.0f);
    const auto decoded = codec_test::round_trip(codec, context(), values);
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::size_t first = i / bucket * bucket;
      const float norm = reference_norm(values.data() + first, std::min<std::size_t>(bucket, values.size() - first));
      const float level = norm / static_cast<float>(Codec::levels);
      CHECK(std::fabs(values[i] - decoded[i]) <= level * (1.0f + 0x1p-20f));
      CHECK((decoded[i] == 0.0f || std::signbit(decoded[i]) == std::signbit(values[i])));
      CHECK(std::fabs(decoded[i]) <= norm);
    }
  }
}

TEST_CASE_TEMPLATE("qsgd: decoding is unbiased over 2000 steps", Codec, QSGD_TYPES)
{
  // Stochastic rounding between levels N/s apart: variance (N/s)^2 f (1 - f).
  constexpr std::size_t steps = 2000;
  const std::uint32_t bucket = 16;
  const Codec codec{.bucket = bucket};
  const auto values = unbiased_probe(48);
  std::vector<double> sum(values.size(), 0.0);
  for (std::uint64_t s = 0; s < steps; ++s) {
    const auto decoded = codec_test::round_trip(codec, context(s, 3), values);
    for (std::size_t i = 0; i < values.size(); ++i) {
      sum[i] += decoded[i];
    }
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::size_t first = i / bucket * bucket;
    const double level = reference_norm(values.data() + first, bucket) / static_cast<double>(Codec::levels);
    const double position = std::fabs(values[i]) / level;
    const double f = position - std::floor(position);
    const double standard_error = level * std::sqrt(f * (1 - f) / steps);
    CAPTURE(i);
    CHECK(std::fabs(sum[i] / steps - values[i]) <= 5 * standard_error + 0x1p-16 * level + 1e-6 * std::fabs(values[i]));
  }
}

TEST_CASE_TEMPLATE("qsgd: edge inputs decode finite and zero buckets exactly", Codec, QSGD_TYPES)
{
  for (const auto& input : codec_test::edge_inputs()) {
    CAPTURE(input.name);
    for (std::uint32_t bucket : {1u, 7u, 512u}) {
      const Codec codec{.bucket = bucket};
      const auto payload = codec_test::encode(codec, context(), input.values);
      CHECK(payload == reference_qsgd(input.values, bucket, Codec::levels, context()));
      const auto decoded = codec_test::decode(codec, context(), payload, input.values.size());
      for (std::size_t i = 0; i < decoded.size(); ++i) {
        REQUIRE(std::isfinite(decoded[i]));
        if (input.values[i] == 0.0f) {
          CHECK(decoded[i] == 0.0f);  // level 0
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("qsgd: malformed payloads are rejected and leave the accumulator alone", Codec, QSGD_TYPES)
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
    auto other_levels = valid;
    other_levels[4] = static_cast<std::byte>(Codec::levels == 7 ? 3 : 7);
    rejects(other_levels, "other levels");
    auto other_bucket = valid;
    other_bucket[16] = std::byte{65};
    rejects(other_bucket, "another bucket size");
    for (float bad : {std::nanf(""), INFINITY, -INFINITY, -1.0f, -0.0f}) {
      auto bad_norm = valid;
      std::memcpy(bad_norm.data() + 24 + 4 * (ceil_div(n, 64) - 1), &bad, 4);
      rejects(bad_norm, "a non-finite or negative norm");
    }
    if ((n * Codec::bits) % 8 != 0) {
      auto padding = valid;
      padding.at(padding.size() - 1) |= std::byte{0x80};  // at(): g++ -O2 -mavx2 sees a possible index -1 in back()
      rejects(padding, "nonzero padding bits");
    }
  }
}

TEST_CASE_TEMPLATE("qsgd: NaN or Inf input is refused with errc::non_finite", Codec, QSGD_TYPES)
{
  const Codec codec{};
  codec_test::check_rejects_non_finite(codec, context());
}

TEST_CASE_TEMPLATE("qsgd: draws depend on seed, step, bucket, rank and phase only", Codec, QSGD_TYPES)
{
  const Codec codec{};
  const auto values = codec_test::gradient_like(4096, 9);
  const auto base = codec_test::encode(codec, context(), values);
  CHECK(codec_test::encode(codec, context(), values) == base);
  for (int change = 0; change < 4; ++change) {
    auto other = context();
    other.rank += change == 0 ? 1 : 0;
    other.step += change == 1 ? 1 : 0;
    other.phase += change == 2 ? 1 : 0;
    other.seed += change == 3 ? 1 : 0;
    CAPTURE(change);
    CHECK(codec_test::encode(codec, other, values) != base);
  }
}

TEST_CASE_TEMPLATE("qsgd: encode_residual equals encode, decode and subtract, bit for bit", Codec, QSGD_TYPES)
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

TEST_CASE_TEMPLATE("qsgd: a shard at a bucket boundary encodes as the whole does", Codec, QSGD_TYPES)
{
  const std::uint32_t bucket = 64;
  const Codec codec{.bucket = bucket};
  const auto whole_values = codec_test::gradient_like(1000, 6);
  const auto whole = codec_test::encode(codec, context(), whole_values);
  const std::size_t total = ceil_div(1000, bucket);
  for (std::size_t first_bucket : {1u, 5u}) {
    const std::size_t first = first_bucket * bucket;
    const std::vector<float> shard_values(whole_values.begin() + static_cast<std::ptrdiff_t>(first),
                                          whole_values.end());
    auto ctx = context();
    ctx.offset = first;
    const auto shard = codec_test::encode(codec, ctx, shard_values);
    CHECK(std::equal(shard.begin() + 24, shard.begin() + 24 + 4 * static_cast<std::ptrdiff_t>(total - first_bucket),
                     whole.begin() + 24 + 4 * static_cast<std::ptrdiff_t>(first_bucket)));
    const std::size_t whole_fields = 24 + 4 * total;
    const std::size_t shard_fields = 24 + 4 * (total - first_bucket);
    CHECK(std::equal(shard.begin() + static_cast<std::ptrdiff_t>(shard_fields), shard.end() - 1,
                     whole.begin() + static_cast<std::ptrdiff_t>(whole_fields + first * Codec::bits / 8)));
  }
}

TEST_CASE("qsgd: parameters print")
{
  std::ostringstream os;
  os << qsgd<15>{.bucket = 128};
  CHECK(os.str() == "qsgd<15>{bucket=128}");
}

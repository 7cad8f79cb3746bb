// compress::adaptive: the schedule (default and explicit) picks the width
// by step, the payload carries it, decode rejects a width the schedule does
// not give that step, bodies are uniform<b> bodies, byte counts, malformed
// payloads and the fused residual.
#include <terse/compress/adaptive.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/core/concepts.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <vector>

#include "codec_test_support.hpp"
#include "quantizers_test_support.hpp"

namespace {

using terse::compress::adaptive;
using terse::compress::adaptive_stage;
using namespace quantizers_test;

static_assert(terse::concepts::compressor<adaptive>);
static_assert(terse::concepts::residual_fusing_compressor<adaptive>);
static_assert(adaptive::aggregation_kind == terse::aggregation::requantizable);

terse::codec_context at_step(std::uint64_t step)
{
  return terse::codec_context{.seed = 3, .step = step, .bucket = 1, .rank = 2, .world = 4};
}

}  // namespace

TEST_CASE("adaptive: the default schedule sends 2 bits, then 4 from 30% of the horizon, then 8 from 70%")
{
  const adaptive codec{.horizon = 1000};
  CHECK(codec.bits_at(0) == 2);
  CHECK(codec.bits_at(299) == 2);
  CHECK(codec.bits_at(300) == 4);
  CHECK(codec.bits_at(699) == 4);
  CHECK(codec.bits_at(700) == 8);
  CHECK(codec.bits_at(1'000'000) == 8);
  CHECK(codec.widest_bits() == 8);
  const adaptive huge{.horizon = ~std::uint64_t{0}};  // no overflow in the fractions
  CHECK(huge.bits_at(~std::uint64_t{0} / 10 * 3 - 1) == 2);
  CHECK(huge.bits_at(~std::uint64_t{0} / 10 * 3 + 2) == 4);
  const auto values = codec_test::gradient_like(1000);
  for (std::uint64_t step : {0u, 299u, 300u, 699u, 700u, 5000u}) {
    const auto payload = codec_test::encode(codec, at_step(step), values);
    std::uint32_t param;
    std::memcpy(&param, payload.data() + 4, 4);
    CAPTURE(step);
    CHECK(param == codec.bits_at(step));
    CHECK(payload.size() == codec.bytes_for(1000, param));
    CHECK(payload.size() == 24 + 8 * 2 + ceil_div(1000 * param, 8));
  }
}

TEST_CASE("adaptive: an explicit schedule replaces the default and sizes for its widest stage")
{
  const adaptive codec{.bucket = 100, .schedule = {{0, 8}, {10, 2}, {20, 4}}};
  CHECK(codec.bits_at(0) == 8);
  CHECK(codec.bits_at(9) == 8);
  CHECK(codec.bits_at(10) == 2);
  CHECK(codec.bits_at(25) == 4);
  CHECK(codec.max_encoded_bytes(1000) == 24 + 8 * 10 + 1000);
  const adaptive narrow{.schedule = {{0, 2}, {5, 4}}};
  CHECK(narrow.max_encoded_bytes(1000) == 24 + 8 * 2 + 500);
  for (const auto& bad : {std::vector<adaptive_stage>{{1, 2}}, std::vector<adaptive_stage>{{0, 3}},
                          std::vector<adaptive_stage>{{0, 2}, {0, 4}}, std::vector<adaptive_stage>{{0, 2}, {9, 16}}}) {
    const adaptive wrong{.schedule = bad};
    CHECK(codec_test::error_code_of([&] { (void)wrong.bits_at(3); }) == terse::errc::invalid_argument);
    CHECK(codec_test::error_code_of([&] { (void)wrong.max_encoded_bytes(3); }) == terse::errc::invalid_argument);
  }
}

TEST_CASE("adaptive: the body is uniform<b>'s body at the schedule's width")
{
  const adaptive codec{.bucket = 64, .horizon = 100};
  for (std::uint64_t step : {0u, 50u, 90u}) {
    for (std::size_t n : {0u, 1u, 63u, 1000u}) {
      CAPTURE(step);
      CAPTURE(n);
      const auto values = codec_test::gradient_like(n, 7);
      const auto payload = codec_test::encode(codec, at_step(step), values);
      CHECK(payload == reference_uniform(values, 64, codec.bits_at(step), at_step(step), 13));
      // and it decodes as uniform<b> does
      const auto decoded = codec_test::decode(codec, at_step(step), payload, n);
      const terse::compress::uniform<2> u2{.bucket = 64};
      const terse::compress::uniform<4> u4{.bucket = 64};
      const terse::compress::uniform<8> u8{.bucket = 64};
      const std::uint32_t bits = codec.bits_at(step);
      const auto expected = bits == 2   ? codec_test::round_trip(u2, at_step(step), values)
                            : bits == 4 ? codec_test::round_trip(u4, at_step(step), values)
                                        : codec_test::round_trip(u8, at_step(step), values);
      CHECK(decoded == expected);
    }
  }
}

TEST_CASE("adaptive: a payload whose width disagrees with the schedule for ctx.step is rejected")
{
  const adaptive codec{.horizon = 100};
  const auto values = codec_test::gradient_like(1000);
  const auto early = codec_test::encode(codec, at_step(5), values);  // 2 bits
  std::vector<float> acc(1000, 42.0f);
  // the receiver is at another stage
  CHECK(codec_test::error_code_of([&] { codec.decode_add(at_step(50), early, acc); }) ==
        terse::errc::malformed_payload);
  // the header claims another (valid) width, with a body of the right length for it
  const auto late = codec_test::encode(codec, at_step(50), values);  // 4 bits
  auto relabelled = late;
  relabelled[4] = std::byte{2};
  CHECK(codec_test::error_code_of([&] { codec.decode_add(at_step(50), relabelled, acc); }) ==
        terse::errc::malformed_payload);
  // a width no schedule has
  auto odd = late;
  odd[4] = std::byte{3};
  CHECK(codec_test::error_code_of([&] { codec.decode_add(at_step(50), odd, acc); }) == terse::errc::malformed_payload);
  CHECK(acc == std::vector<float>(1000, 42.0f));
  codec_test::check_rejects_malformed(codec, at_step(50), late, 1000);
  codec_test::check_rejects_malformed(codec, at_step(95), codec_test::encode(codec, at_step(95), values), 1000);
}

TEST_CASE("adaptive: edge inputs, non-finite input and the fused residual")
{
  const adaptive codec{.bucket = 100, .horizon = 10};
  for (std::uint64_t step : {0u, 5u, 9u}) {
    for (const auto& input : codec_test::edge_inputs()) {
      CAPTURE(input.name);
      const auto decoded = codec_test::round_trip(codec, at_step(step), input.values);
      for (float v : decoded) {
        REQUIRE(std::isfinite(v));
      }
    }
    codec_test::check_rejects_non_finite(codec, at_step(step));
    const auto g = codec_test::gradient_like(777, 4);
    const auto e_old = codec_test::gradient_like(777, 5, 1e-3f);
    std::vector<float> p(777), e_new(777);
    for (std::size_t i = 0; i < 777; ++i) {
      p[i] = g[i] + e_old[i];
    }
    std::vector<std::byte> fused(codec.max_encoded_bytes(777));
    fused.resize(codec.encode_residual(at_step(step), g, e_old, e_new, fused));
    CHECK(fused == codec_test::encode(codec, at_step(step), p));
    const auto decoded = codec_test::decode(codec, at_step(step), fused, 777);
    std::size_t differ = 0;
    for (std::size_t i = 0; i < 777; ++i) {
      const float expected = p[i] - decoded[i];
      differ += std::memcmp(&expected, &e_new[i], 4) != 0 ? 1 : 0;
    }
    CHECK(differ == 0);
  }
}

TEST_CASE("adaptive: parameters print")
{
  std::ostringstream os;
  os << adaptive{.bucket = 256, .horizon = 500};
  CHECK(os.str() == "adaptive{bucket=256, horizon=500 (2 bits, 4 from 30%, 8 from 70%)}");
  os.str("");
  os << adaptive{.schedule = {{0, 4}, {100, 8}}};
  CHECK(os.str() == "adaptive{bucket=512, schedule=[4 bits from step 0, 8 bits from step 100]}");
}

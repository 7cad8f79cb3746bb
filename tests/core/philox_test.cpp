#include <terse/core/philox.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>

namespace {
struct known_answer {
  terse::philox_counter counter;
  terse::philox_key key;
  terse::philox_counter expected;
};

// Random123's published known-answer vectors for philox4x32-10
// (Random123/tests/kat_vectors), from Salmon et al., SC'11.
constexpr known_answer random123_vectors[] = {
    {{{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u}},
     {{0x00000000u, 0x00000000u}},
     {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
    {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
     {{0xffffffffu, 0xffffffffu}},
     {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
    {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
     {{0xa4093822u, 0x299f31d0u}},
     {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
};

constexpr bool same(terse::philox_counter a, terse::philox_counter b)
{
  return a.word[0] == b.word[0] && a.word[1] == b.word[1] && a.word[2] == b.word[2] && a.word[3] == b.word[3];
}
}  // namespace

TEST_CASE("philox4x32-10 matches Random123's known-answer vectors")
{
  for (const auto& kat : random123_vectors) {
    const auto got = terse::philox4x32_10(kat.counter, kat.key);
    CHECK(got.word[0] == kat.expected.word[0]);
    CHECK(got.word[1] == kat.expected.word[1]);
    CHECK(got.word[2] == kat.expected.word[2]);
    CHECK(got.word[3] == kat.expected.word[3]);
  }
  // constexpr evaluation gives the same words (the device path is the same code)
  static_assert(same(terse::philox4x32_10(random123_vectors[0].counter, random123_vectors[0].key),
                     random123_vectors[0].expected));
}

TEST_CASE("random_stream draws are a pure function of (seed, step, stream, index)")
{
  const terse::random_stream a{.seed = 42, .step = 7, .stream = 3};
  const terse::random_stream same_again{.seed = 42, .step = 7, .stream = 3};
  const terse::random_stream other_step{.seed = 42, .step = 8, .stream = 3};
  const terse::random_stream other_stream{.seed = 42, .step = 7, .stream = 4};
  int differ_step = 0;
  int differ_stream = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    CHECK(a.bits(i) == same_again.bits(i));
    differ_step += a.bits(i) != other_step.bits(i) ? 1 : 0;
    differ_stream += a.bits(i) != other_stream.bits(i) ? 1 : 0;
  }
  CHECK(differ_step > 990);
  CHECK(differ_stream > 990);
  // indices above 2^32 reach distinct blocks, not a wrapped copy
  CHECK(a.bits(std::uint64_t{1} << 34) != a.bits(0));
}

TEST_CASE("uniform draws lie in the unit interval with mean 1/2 and variance 1/12")
{
  const terse::random_stream stream{.seed = 2024, .step = 1, .stream = 0};
  constexpr int count = 200000;
  double sum = 0.0;
  double sum_sq = 0.0;
  for (int i = 0; i < count; ++i) {
    const float u = stream.uniform(static_cast<std::uint64_t>(i));
    REQUIRE(u >= 0.0f);
    REQUIRE(u < 1.0f);
    sum += u;
    sum_sq += static_cast<double>(u) * u;
  }
  const double mean = sum / count;
  const double variance = sum_sq / count - mean * mean;
  // standard error of the mean is sqrt(1/12 / n) ~ 6.5e-4; allow 5 sigma
  CHECK(std::abs(mean - 0.5) < 5 * 6.5e-4);
  CHECK(std::abs(variance - 1.0 / 12.0) < 2e-3);
  CHECK(terse::uniform_float(0xffffffffu) < 1.0f);
  CHECK(terse::uniform_float(0u) == 0.0f);
}

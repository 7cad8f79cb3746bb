#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace {
float from_bits(std::uint32_t bits)
{
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

bool is_nan_fp16(std::uint16_t h)
{
  return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0u;
}

// Reference rounding: the nearest representable value by exhaustive search
// over the two neighbours, ties to the even bit pattern.
template <class Decode>
std::uint16_t nearest_even(float value, std::uint16_t candidate, Decode decode)
{
  std::uint16_t best = candidate;
  for (int delta = -1; delta <= 1; ++delta) {
    const auto other = static_cast<std::uint16_t>(candidate + delta);
    const double err_other = std::abs(static_cast<double>(decode(other)) - value);
    const double err_best = std::abs(static_cast<double>(decode(best)) - value);
    if (err_other < err_best || (err_other == err_best && (other & 1u) == 0u && (best & 1u) != 0u)) {
      best = other;
    }
  }
  return best;
}
}  // namespace

TEST_CASE("fp16 decodes every bit pattern and round-trips it")
{
  for (std::uint32_t raw = 0; raw <= 0xffffu; ++raw) {
    const auto h = static_cast<std::uint16_t>(raw);
    const float f = terse::detail::fp16_bits_to_float(h);
    if (is_nan_fp16(h)) {
      CHECK(std::isnan(f));
      CHECK(is_nan_fp16(terse::detail::float_to_fp16_bits(f)));
    } else {
      REQUIRE(terse::detail::float_to_fp16_bits(f) == h);
    }
  }
}

#if defined(__FLT16_MAX__) && defined(__x86_64__)
TEST_CASE("float -> fp16 agrees with the compiler's _Float16 conversion")
{
  // edge values and a million random bit patterns across every exponent
  const float edges[] = {0.0f,
                         -0.0f,
                         65504.0f,
                         65519.99f,
                         65520.0f,
                         -65520.0f,
                         6.1035156e-05f,
                         5.9604645e-08f,
                         2.9802322e-08f,
                         2.9802326e-08f,
                         1e-10f,
                         std::numeric_limits<float>::max(),
                         std::numeric_limits<float>::denorm_min(),
                         std::numeric_limits<float>::infinity()};
  for (float f : edges) {
    const auto expected = static_cast<_Float16>(f);
    std::uint16_t expected_bits;
    std::memcpy(&expected_bits, &expected, 2);
    CHECK(terse::detail::float_to_fp16_bits(f) == expected_bits);
  }
  const terse::random_stream stream{.seed = 99};
  for (std::uint64_t i = 0; i < 1000000; ++i) {
    const float f = from_bits(stream.bits(i));
    if (std::isnan(f)) {
      continue;
    }
    const auto expected = static_cast<_Float16>(f);
    std::uint16_t expected_bits;
    std::memcpy(&expected_bits, &expected, 2);
    REQUIRE(terse::detail::float_to_fp16_bits(f) == expected_bits);
  }
}
#endif

TEST_CASE("float -> bf16 rounds to the nearest value, ties to even")
{
  const auto decode = [](std::uint16_t b) { return terse::detail::bf16_bits_to_float(b); };
  const terse::random_stream stream{.seed = 7};
  for (std::uint64_t i = 0; i < 200000; ++i) {
    const float f = from_bits(stream.bits(i));
    if (!std::isfinite(f) || std::abs(f) > 3.38e38f) {
      continue;
    }
    const std::uint16_t got = terse::detail::float_to_bf16_bits(f);
    REQUIRE(got == nearest_even(f, got, decode));
  }
  // exact halfway cases go to the even neighbour
  CHECK(terse::detail::float_to_bf16_bits(from_bits(0x3f808000u)) == 0x3f80u);
  CHECK(terse::detail::float_to_bf16_bits(from_bits(0x3f818000u)) == 0x3f82u);
  // NaN stays NaN, Inf stays Inf
  CHECK(std::isnan(float(terse::bf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isinf(float(terse::bf16(std::numeric_limits<float>::infinity()))));
  CHECK(float(terse::bf16(1.0f)) == 1.0f);
}

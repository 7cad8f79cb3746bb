// compress::cast<fp16 / bf16>: every fp16 value and a million random
// floats convert exactly as core/numeric.hpp does (with saturation beyond
// the range), byte counts, the summable interface, edge inputs, malformed
// payloads, non-finite input and the fused residual.
#include <terse/compress/cast.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/numeric.hpp>

#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <utility>
#include <vector>

#include "codec_test_support.hpp"
#include "quantizers_test_support.hpp"

namespace {

using terse::bf16;
using terse::fp16;
using terse::compress::cast;
using terse::compress::cast_bf16;
using terse::compress::cast_fp16;

static_assert(terse::concepts::summable_compressor<cast_fp16>);
static_assert(terse::concepts::summable_compressor<cast_bf16>);
static_assert(terse::concepts::residual_fusing_compressor<cast_bf16>);
static_assert(std::is_same_v<cast_fp16::wire_type, fp16> && std::is_same_v<cast_bf16::wire_type, bf16>);

float from_bits(std::uint32_t bits)
{
  return terse::detail::bits_float(bits);
}

bool finite_bits(std::uint32_t bits)
{
  return (bits & 0x7f800000u) != 0x7f800000u;
}

// The expected storage bits of a finite float: numeric.hpp's rounding of the
// value saturated at the largest finite storage value.
template <class Storage>
std::uint16_t expected_bits(float v)
{
  if constexpr (std::is_same_v<Storage, fp16>) {
    return terse::detail::float_to_fp16_bits(std::fmax(-65504.0f, std::fmin(65504.0f, v)));
  } else {
    const float max = from_bits(0x7f7f0000u);
    return terse::detail::float_to_bf16_bits(std::fmax(-max, std::fmin(max, v)));
  }
}

template <class Storage>
std::vector<std::uint16_t> encode_bits(const std::vector<float>& values,
                                       terse::compress::overflow policy = terse::compress::overflow::saturate)
{
  const cast<Storage> codec{.on_overflow = policy};
  const auto payload = codec_test::encode(codec, terse::codec_context{}, values);
  REQUIRE(payload.size() == 24 + 2 * values.size());
  std::vector<std::uint16_t> bits(values.size());
  if (!values.empty()) {
    std::memcpy(bits.data(), payload.data() + 24, 2 * values.size());
  }
  return bits;
}

// Floats worth converting: every fp16 value, the midpoints between
// neighbours (ties), and a million random finite bit patterns.
std::vector<float> probe_floats()
{
  std::vector<float> values;
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const float v = terse::detail::fp16_bits_to_float(static_cast<std::uint16_t>(h));
    if (std::isfinite(v)) {
      values.push_back(v);
      const float next = terse::detail::fp16_bits_to_float(static_cast<std::uint16_t>(h + 1));
      if (std::isfinite(next) && (h & 0x7fffu) != 0x7bffu) {
        values.push_back(static_cast<float>((static_cast<double>(v) + next) / 2));  // exact tie
      }
    }
  }
  const terse::random_stream stream{.seed = 77, .step = 0, .stream = 1};
  for (std::uint64_t i = 0; i < 1'000'000; ++i) {
    const std::uint32_t bits = stream.bits(i);
    if (finite_bits(bits)) {
      values.push_back(from_bits(bits));
    }
  }
  for (std::uint32_t special : {0x477fefffu, 0x477ff000u, 0x7f7fffffu, 0x7f7f7fffu, 0x7f7f8000u, 0x00000001u,
                                0x80000001u, 0x33000000u, 0x33000001u, 0x387fffffu, 0x38800000u}) {
    values.push_back(from_bits(special));
    values.push_back(-from_bits(special));
  }
  return values;
}

}  // namespace

TEST_CASE_TEMPLATE("cast: encoding equals numeric.hpp's rounding (saturated) on every probe", Storage, fp16, bf16)
{
  const auto values = probe_floats();
  const auto bits = encode_bits<Storage>(values);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    differ += bits[i] != expected_bits<Storage>(values[i]) ? 1 : 0;
  }
  CHECK(differ == 0);
}

TEST_CASE("cast: every fp16 and bf16 value decodes exactly as numeric.hpp does; Inf and NaN are refused")
{
  for (const bool bf : {false, true}) {
    CAPTURE(bf);
    std::vector<std::uint16_t> finite_patterns;
    for (std::uint32_t h = 0; h < 0x10000u; ++h) {
      const std::uint16_t mask = bf ? 0x7f80u : 0x7c00u;
      if ((h & mask) != mask) {
        finite_patterns.push_back(static_cast<std::uint16_t>(h));
      }
    }
    const std::size_t n = finite_patterns.size();
    auto payload = quantizers_test::header(bf ? 3 : 2, 0, n, 0, 24 + 2 * n);
    // Byte by byte: GCC 12 (-O1, TSan) misreads a memcpy here as overflowing.
    const auto* patterns = reinterpret_cast<const std::byte*>(finite_patterns.data());
    for (std::size_t i = 0; i < 2 * n; ++i) {
      payload[24 + i] = patterns[i];
    }
    std::vector<float> decoded(n, 0.0f);
    if (bf) {
      cast_bf16{}.decode_add({}, payload, decoded);
    } else {
      cast_fp16{}.decode_add({}, payload, decoded);
    }
    std::size_t differ = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float expected = bf ? terse::detail::bf16_bits_to_float(finite_patterns[i])
                                : terse::detail::fp16_bits_to_float(finite_patterns[i]);
      differ += 0.0f + expected != decoded[i] ? 1 : 0;  // acc 0 + -0 is +0
    }
    CHECK(differ == 0);
    // every Inf and NaN pattern is refused
    for (std::uint32_t h = 0; h < 0x10000u; h += 1) {
      const std::uint16_t mask = bf ? 0x7f80u : 0x7c00u;
      if ((h & mask) != mask || (h % 61 != 0 && (h & 0x7fffu) != mask)) {
        continue;  // a sample of NaN payloads and both infinities
      }
      auto bad = quantizers_test::header(bf ? 3 : 2, 0, 3, 0, 30);
      std::memcpy(bad.data() + 24 + 2, &h, 2);
      std::vector<float> acc(3, 1.0f);
      CHECK(codec_test::error_code_of([&] {
              if (bf) {
                cast_bf16{}.decode_add({}, bad, acc);
              } else {
                cast_fp16{}.decode_add({}, bad, acc);
              }
            }) == terse::errc::malformed_payload);
      CHECK(acc == std::vector<float>(3, 1.0f));
    }
  }
}

TEST_CASE_TEMPLATE("cast: payload size is 24 + 2n bytes", Storage, fp16, bf16)
{
  const cast<Storage> codec;
  for (std::size_t n : {0u, 1u, 7u, 8u, 15u, 16u, 17u, 1000u, 4099u}) {
    CHECK(codec.max_encoded_bytes(n) == 24 + 2 * n);
    CHECK(codec.wire_count(n) == n);
    CHECK(codec_test::encode(codec, {}, codec_test::gradient_like(n)).size() == 24 + 2 * n);
  }
}

TEST_CASE_TEMPLATE("cast: the summable path carries the payload's values", Storage, fp16, bf16)
{
  const cast<Storage> codec;
  const auto values = codec_test::gradient_like(1001, 3, 10.0f);
  const auto payload = codec_test::encode(codec, {}, values);
  std::vector<Storage> wire(values.size());
  codec.encode_values({}, values, wire);
  CHECK(std::memcmp(wire.data(), payload.data() + 24, 2 * values.size()) == 0);
  std::vector<float> out(values.size(), 99.0f);
  codec.decode_values({}, std::vector<Storage>(wire), out);
  CHECK(out == codec_test::decode(codec, {}, payload, values.size()));
  std::vector<Storage> short_wire(values.size() - 1);
  CHECK(codec_test::error_code_of([&] { codec.encode_values({}, values, short_wire); }) ==
        terse::errc::invalid_argument);
}

TEST_CASE_TEMPLATE("cast: edge inputs round to nearest and, when asked to, saturate, never Inf", Storage, fp16, bf16)
{
  const cast<Storage> codec{.on_overflow = terse::compress::overflow::saturate};
  for (const auto& input : codec_test::edge_inputs()) {
    CAPTURE(input.name);
    const auto decoded = codec_test::round_trip(codec, {}, input.values);
    for (std::size_t i = 0; i < decoded.size(); ++i) {
      REQUIRE(std::isfinite(decoded[i]));
      const float v = input.values[i];
      if (std::is_same_v<Storage, fp16> && std::fabs(v) >= 6.103515625e-05f && std::fabs(v) <= 65504.0f) {
        CHECK(std::fabs(decoded[i] - v) <= std::fabs(v) * 0x1p-11f);
      } else if (std::is_same_v<Storage, bf16> && std::fabs(v) >= FLT_MIN && std::fabs(v) <= 3.3895313e38f) {
        CHECK(std::fabs(decoded[i] - v) <= std::fabs(v) * 0x1p-8f);
      }
    }
  }
  const std::vector<float> huge{FLT_MAX, -FLT_MAX, 1e6f, -70000.0f};
  const auto decoded = codec_test::round_trip(codec, {}, huge);
  const float top = std::is_same_v<Storage, fp16> ? 65504.0f : from_bits(0x7f7f0000u);
  CHECK(decoded[0] == top);
  CHECK(decoded[1] == -top);
}

TEST_CASE_TEMPLATE("cast: malformed payloads are rejected and leave the accumulator alone", Storage, fp16, bf16)
{
  const cast<Storage> codec;
  for (std::size_t n : {1u, 100u, 1000u}) {
    const auto values = codec_test::gradient_like(n, 2);
    const auto valid = codec_test::encode(codec, {}, values);
    codec_test::check_rejects_malformed(codec, {}, valid, n);
    auto param = valid;
    param[4] = std::byte{1};
    std::vector<float> acc(n, 42.0f);
    CHECK(codec_test::error_code_of([&] { codec.decode_add({}, param, acc); }) == terse::errc::malformed_payload);
    auto aux = valid;
    aux[20] = std::byte{1};
    CHECK(codec_test::error_code_of([&] { codec.decode_add({}, aux, acc); }) == terse::errc::malformed_payload);
    CHECK(acc == std::vector<float>(n, 42.0f));
  }
}

TEST_CASE_TEMPLATE("cast: NaN or Inf input is refused with errc::non_finite", Storage, fp16, bf16)
{
  const cast<Storage> codec;
  codec_test::check_rejects_non_finite(codec, {});
  std::vector<Storage> wire(4096);
  auto values = codec_test::gradient_like(4096);
  values[17] = INFINITY;
  CHECK(codec_test::error_code_of([&] { cast<Storage>{}.encode_values({}, values, wire); }) == terse::errc::non_finite);
}

TEST_CASE_TEMPLATE("cast: encode_residual equals encode, decode and subtract, bit for bit", Storage, fp16, bf16)
{
  const cast<Storage> codec;
  for (std::size_t n : {1u, 15u, 100u, 4099u}) {
    const auto g = codec_test::gradient_like(n, 4);
    const auto e_old = codec_test::gradient_like(n, 5, 1e-3f);
    std::vector<float> p(n), e_new(n);
    for (std::size_t i = 0; i < n; ++i) {
      p[i] = g[i] + e_old[i];
    }
    std::vector<std::byte> fused(codec.max_encoded_bytes(n));
    CHECK(codec.encode_residual({}, g, e_old, e_new, fused) == fused.size());
    const auto plain = codec_test::encode(codec, {}, p);
    CHECK(fused == plain);
    const auto decoded = codec_test::decode(codec, {}, plain, n);
    std::size_t differ = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float expected = p[i] - decoded[i];
      differ += std::memcmp(&expected, &e_new[i], 4) != 0 ? 1 : 0;
    }
    CHECK(differ == 0);
  }
}

TEST_CASE("cast: parameters print")
{
  std::ostringstream os;
  os << cast_fp16{} << ' ' << cast_bf16{.on_overflow = terse::compress::overflow::infinity};
  CHECK(os.str() == "cast<fp16>{on_overflow=raise} cast<bf16>{on_overflow=infinity}");
}

// The smallest magnitude that rounds to Inf, and the largest that does not.
template <class Storage>
std::pair<float, float> overflow_edge()
{
  if constexpr (std::is_same_v<Storage, fp16>) {
    return {65520.0f, std::nextafter(65520.0f, 0.0f)};
  } else {
    return {from_bits(0x7f7f8000u), from_bits(0x7f7f7fffu)};
  }
}

TEST_CASE_TEMPLATE("cast: overflow raises errc::non_finite by default, exactly from the first value that rounds to Inf",
                   Storage, fp16, bf16)
{
  const auto [first_over, last_under] = overflow_edge<Storage>();
  const cast<Storage> codec;
  std::vector<float> values = codec_test::gradient_like(1000);
  values[600] = -last_under;
  std::vector<Storage> wire(values.size());
  codec.encode_values({}, values, wire);  // the largest value that rounds to a finite one passes
  CHECK(std::isfinite(static_cast<float>(wire[600])));
  for (const float bad : {first_over, -first_over, 1e30f}) {
    if (std::is_same_v<Storage, bf16> && bad == 1e30f) {
      continue;  // in range for bf16
    }
    values[600] = bad;
    CHECK(codec_test::error_code_of([&] { codec.encode_values({}, values, wire); }) == terse::errc::non_finite);
    std::vector<std::byte> out(codec.max_encoded_bytes(values.size()));
    CHECK(codec_test::error_code_of([&] { (void)codec.encode({}, values, out); }) == terse::errc::non_finite);
  }
}

TEST_CASE_TEMPLATE("cast: overflow::infinity sends +-Inf, decodes it, and still refuses NaN", Storage, fp16, bf16)
{
  const auto [first_over, last_under] = overflow_edge<Storage>();
  const cast<Storage> codec{.on_overflow = terse::compress::overflow::infinity};
  const std::vector<float> values{1.0f, first_over, -first_over, last_under, -2.5f};
  const auto bits = encode_bits<Storage>(values, terse::compress::overflow::infinity);
  const auto decoded = codec_test::round_trip(codec, {}, values);
  CHECK(decoded[0] == 1.0f);
  CHECK(decoded[1] == INFINITY);
  CHECK(decoded[2] == -INFINITY);
  CHECK(std::isfinite(decoded[3]));
  CHECK(decoded[4] == -2.5f);
  // IEEE round to nearest even on every probe (numeric.hpp's conversions overflow to Inf).
  const auto probes = probe_floats();
  const auto probe_bits = encode_bits<Storage>(probes, terse::compress::overflow::infinity);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const std::uint16_t want = std::is_same_v<Storage, fp16> ? terse::detail::float_to_fp16_bits(probes[i])
                                                             : terse::detail::float_to_bf16_bits(probes[i]);
    differ += probe_bits[i] != want ? 1 : 0;
  }
  CHECK(differ == 0);
  // a NaN pattern in a payload is malformed; an Inf is not under this policy
  auto payload = codec_test::encode(codec, {}, values);
  std::vector<float> acc(values.size(), 0.0f);
  codec.decode_add({}, payload, acc);
  CHECK(acc[1] == INFINITY);
  const cast<Storage> strict;
  CHECK(codec_test::error_code_of([&] { strict.decode_add({}, payload, acc); }) == terse::errc::malformed_payload);
  payload[24 + 2 * 1] |= std::byte{0x01};  // Inf -> NaN (a mantissa bit)
  CHECK(codec_test::error_code_of([&] { codec.decode_add({}, payload, acc); }) == terse::errc::malformed_payload);
  // NaN input is still refused
  const std::vector<float> nan{1.0f, NAN};
  std::vector<Storage> wire(2);
  CHECK(codec_test::error_code_of([&] { codec.encode_values({}, nan, wire); }) == terse::errc::non_finite);
}

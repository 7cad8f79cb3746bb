// The quantizers' building blocks: draws and bit fields agree with their
// definitions; and, in the SIMD builds of these tests (quantizers_avx2_tests,
// quantizers_avx512_tests), every SIMD loop writes the same bits as its
// portable twin on inputs that hit every path (ragged offsets, partial
// groups, tails, every field width, residuals, edge values).
#include <terse/compress/detail/cast_host.hpp>
#include <terse/compress/detail/qsgd_host.hpp>
#include <terse/compress/detail/quantizer_bits.hpp>
#include <terse/compress/detail/quantizer_draws.hpp>
#include <terse/compress/detail/quantizer_engine.hpp>
#include <terse/compress/detail/uniform_host.hpp>

#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "codec_test_support.hpp"

namespace {

using namespace terse::detail;

const terse::random_stream stream{.seed = 0x1234567890abcdefull, .step = 11, .stream = 5};

// Gradient-like values with edge values sprinkled in (zeros of both signs,
// subnormals, huge magnitudes).
[[maybe_unused]] std::vector<float> mixed_values(std::size_t n, std::uint64_t seed)
{
  auto v = codec_test::gradient_like(n, seed);
  for (std::size_t i = 0; i < n; i += 37) {
    const float specials[] = {0.0f, -0.0f, 1e-40f, -3e-39f, 1e30f, -2e29f, FLT_MIN};
    v[i] = specials[(i / 37) % 7];
  }
  return v;
}

[[maybe_unused]] bool same_bits(const std::vector<float>& a, const std::vector<float>& b)
{
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), 4 * a.size()) == 0;
}

}  // namespace

TEST_CASE("quantizer draws: the group generator and draw16 agree with the documented mapping")
{
  std::uint16_t group[64];
  for (std::uint64_t g : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{12345}, (std::uint64_t{1} << 40) + 3}) {
    draw_group16(stream, g, group);
    for (std::uint64_t e = 0; e < 64; ++e) {
      const std::uint64_t j = g * 64 + e;
      const terse::philox_counter block = stream.block(g * 8 + e % 8);
      const std::uint32_t word = block.word[e / 16];
      const std::uint32_t expected = (e / 8) % 2 == 0 ? (word & 0xffffu) : (word >> 16);
      CHECK(group[e] == expected);
      CHECK(draw16(stream, j) == expected);
    }
  }
  CHECK(dither(0) == 0x1p-17f);
  CHECK(dither(65535) == 1.0f - 0x1p-17f);
}

TEST_CASE("quantizer bits: fields, octets and packing agree")
{
  for (unsigned bits = 2; bits <= 8; ++bits) {
    CAPTURE(bits);
    std::uint8_t codes[64];
    for (unsigned i = 0; i < 64; ++i) {
      codes[i] = static_cast<std::uint8_t>((i * 2654435761u >> 7) & ((1u << bits) - 1));
    }
    std::vector<std::uint8_t> packed(8 * bits + 1, 0xAA), fielded(8 * bits + 1, 0x55);
    pack64(codes, bits, packed.data());
    for (unsigned i = 0; i < 64; ++i) {
      put_field(fielded.data(), static_cast<std::uint64_t>(i) * bits, bits, codes[i]);
      CHECK(get_field(packed.data(), static_cast<std::uint64_t>(i) * bits, bits) == codes[i]);
    }
    CHECK(std::equal(packed.begin(), packed.end() - 1, fielded.begin()));
    CHECK(packed.back() == 0xAA);  // nothing written past 8 * bits bytes
    for (unsigned octet = 0; octet < 8; ++octet) {
      const std::uint64_t word = load_octet(packed.data() + octet * bits, bits);
      for (unsigned k = 0; k < 8; ++k) {
        CHECK(((word >> (k * bits)) & ((1u << bits) - 1)) == codes[octet * 8 + k]);
      }
    }
    CHECK(packed_bytes(64, bits) == 8 * bits);
    CHECK(packed_bytes(3, bits) == (3 * bits + 7) / 8);
  }
}

#if TERSE_QUANTIZER_AVX2

TEST_CASE("quantizer SIMD: Philox on eight and sixteen blocks equals random_stream::block")
{
  const philox8_keys keys(stream);
  for (std::uint64_t g : {std::uint64_t{0}, std::uint64_t{7}, (std::uint64_t{1} << 29) - 1, std::uint64_t{1} << 40}) {
    __m256i words[8];
    philox_groups<2>(keys, g, words);
    alignas(32) std::uint32_t lanes[8][8];
    for (int w = 0; w < 8; ++w) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[w]), words[w]);
    }
    for (int group = 0; group < 2; ++group) {
      for (int l = 0; l < 8; ++l) {
        const terse::philox_counter block = stream.block((g + static_cast<std::uint64_t>(group)) * 8 + l);
        for (int w = 0; w < 4; ++w) {
          CHECK(lanes[4 * group + w][l] == block.word[w]);
        }
      }
    }
  }
}

template <class Rule>
void check_quantize_paths(const Rule& rule, const std::vector<float>& g, const std::vector<float>& e_old)
{
  const quantizer_draws draws(stream);
  const std::size_t n = g.size();
  for (std::uint64_t j0 : {std::uint64_t{0}, std::uint64_t{64}, std::uint64_t{13}, std::uint64_t{1000}}) {
    for (std::uint64_t bit0 : {std::uint64_t{0}, std::uint64_t{8} * Rule::bits, std::uint64_t{3}}) {
      for (std::size_t count : {n, n - 1, n / 2 + 3, std::size_t{63}, std::size_t{5}}) {
        CAPTURE(j0);
        CAPTURE(bit0);
        CAPTURE(count);
        std::vector<std::uint8_t> simd(n + 16, 0x5A), portable(n + 16, 0x5A);
        quantize_avx2<Rule, false>(rule, stream, draws.keys, {g.data(), nullptr, nullptr}, count, j0,
                                   {simd.data(), bit0});
        quantize_portable<Rule, false>(rule, stream, {g.data(), nullptr, nullptr}, count, j0, {portable.data(), bit0});
        CHECK(simd == portable);
        std::vector<float> e_simd(n, 7.0f), e_portable(n, 7.0f);
        quantize_avx2<Rule, true>(rule, stream, draws.keys, {g.data(), e_old.data(), e_simd.data()}, count, j0,
                                  {simd.data(), bit0});
        quantize_portable<Rule, true>(rule, stream, {g.data(), e_old.data(), e_portable.data()}, count, j0,
                                      {portable.data(), bit0});
        CHECK(simd == portable);
        CHECK(same_bits(e_simd, e_portable));
        std::vector<float> acc_simd(n, 0.5f), acc_portable(n, 0.5f);
        dequantize_add_avx2(rule, simd.data(), bit0, count, acc_simd.data());
        dequantize_add_portable(rule, simd.data(), bit0, count, acc_portable.data());
        CHECK(same_bits(acc_simd, acc_portable));
      }
    }
  }
}

// Inputs a rule can meet: values spread over [lo, hi] (the ends included),
// and residuals e_old with g + e_old in [lo, hi] up to rounding.
void inputs_in_range(float lo, float hi, std::size_t n, std::vector<float>& g, std::vector<float>& e_old)
{
  g.resize(n);
  e_old.assign(n, 0.0f);
  for (std::size_t i = 0; i < n; ++i) {
    const double t = 0.5 + 0.5 * std::sin(static_cast<double>(i) * 0.731);
    g[i] = i % 97 == 0 ? lo : i % 89 == 0 ? hi : static_cast<float>(lo + t * (static_cast<double>(hi) - lo));
    g[i] = std::fmin(hi, std::fmax(lo, g[i]));
    const float c = static_cast<float>(lo + (1 - t) * (static_cast<double>(hi) - lo));
    const float e = std::fmin(hi, std::fmax(lo, c)) - g[i];
    e_old[i] = i % 2 == 1 && std::isfinite(e) ? e : (i % 4 == 0 ? -0.0f : 0.0f);
  }
}

TEST_CASE("quantizer SIMD: uniform quantize, residual and decode loops equal the portable ones")
{
#if TERSE_QUANTIZER_AVX512
  static_assert(sixteen_lane_rule<uniform_host_rule<8>>, "uniform<8> takes the 512-bit group loop here");
#endif
  std::vector<float> g, e_old;
  for (const auto& range : {std::pair{-0.05f, 0.05f}, std::pair{-FLT_MAX, FLT_MAX}, std::pair{1e-41f, 3e-41f},
                            std::pair{0.5f, 0.5f}, std::pair{-1e-30f, 1e30f}}) {
    const float lo = range.first;
    const float hi = range.second;
    CAPTURE(lo);
    CAPTURE(hi);
    inputs_in_range(lo, hi, 1000, g, e_old);
    check_quantize_paths(uniform_host_rule<8>(uniform_rule::make(lo, hi, 255)), g, e_old);
    check_quantize_paths(uniform_host_rule<4>(uniform_rule::make(lo, hi, 15)), g, e_old);
    check_quantize_paths(uniform_host_rule<2>(uniform_rule::make(lo, hi, 3)), g, e_old);
  }
}

template <std::uint32_t Levels>
void check_qsgd_paths()
{
  constexpr unsigned bits = qsgd_field_bits(Levels);
  std::vector<float> g, e_old;
  for (float norm : {0.0f, 0.3f, 1e-40f, FLT_MAX, 1e25f}) {
    CAPTURE(norm);
    inputs_in_range(-norm, norm, 700, g, e_old);  // |v| <= N, as a bucket's values are
    const qsgd_rule rule = qsgd_rule::make(norm, Levels);
    check_quantize_paths(qsgd_host_rule<bits, true>(rule), g, e_old);
    if (rule.pre == 1.0f) {  // the lanes that skip the exact multiplication by 1
      check_quantize_paths(qsgd_host_rule<bits, false>(rule), g, e_old);
    }
  }
}

TEST_CASE("quantizer SIMD: qsgd quantize, residual and decode loops equal the portable ones, every width")
{
  check_qsgd_paths<1>();
  check_qsgd_paths<3>();
  check_qsgd_paths<7>();
  check_qsgd_paths<15>();
  check_qsgd_paths<31>();
  check_qsgd_paths<63>();
  check_qsgd_paths<127>();
}

TEST_CASE("quantizer SIMD: min/max and the canonical norm equal the portable ones")
{
  for (std::size_t n : {1u, 7u, 31u, 32u, 33u, 100u, 512u, 1000u}) {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
      CAPTURE(n);
      auto g = mixed_values(n, seed);
      const auto e_old = codec_test::gradient_like(n, seed + 10, 1e-2f);
      const quantizer_source plain{g.data(), nullptr, nullptr}, residual{g.data(), e_old.data(), nullptr};
      const auto a = min_max_avx2<false>(plain, n), b = min_max_portable<false>(plain, n);
      CHECK((std::memcmp(&a.lo, &b.lo, 4) == 0 && std::memcmp(&a.hi, &b.hi, 4) == 0 && a.finite == b.finite));
      const auto c = min_max_avx2<true>(residual, n), d = min_max_portable<true>(residual, n);
      CHECK((std::memcmp(&c.lo, &d.lo, 4) == 0 && std::memcmp(&c.hi, &d.hi, 4) == 0 && c.finite == d.finite));
      const auto e = bucket_norm_avx2<false>(plain, n), f = bucket_norm_portable<false>(plain, n);
      CHECK((std::memcmp(&e.norm, &f.norm, 4) == 0 && e.finite == f.finite));
      const auto h = bucket_norm_avx2<true>(residual, n), k = bucket_norm_portable<true>(residual, n);
      CHECK((std::memcmp(&h.norm, &k.norm, 4) == 0 && h.finite == k.finite));
      for (float special : {NAN, INFINITY, -INFINITY}) {
        g[n / 2] = special;
        CHECK(!min_max_avx2<false>(plain, n).finite);
        CHECK(!bucket_norm_avx2<false>(plain, n).finite);
      }
    }
  }
}

#endif  // TERSE_QUANTIZER_AVX2

#if TERSE_CAST_SIMD

TEST_CASE_TEMPLATE("cast SIMD: conversions, checks and decodes equal the portable ones on random bit patterns", Storage,
                   terse::fp16, terse::bf16)
{
  const terse::random_stream bits_stream{.seed = 5, .step = 1, .stream = 2};
  const std::size_t n = 1 << 20;
  std::vector<float> values(n), e_old(n, 0.0f);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t b = bits_stream.bits(i);
    if ((b & 0x7f800000u) == 0x7f800000u) {
      b &= 0xbfffffffu;  // keep it finite
    }
    std::memcpy(&values[i], &b, 4);
    e_old[i] = (i % 3 == 0) ? values[(i * 7) % n] * 1e-3f : 0.0f;
  }
  // Random finite patterns overflow fp16 (and some bf16): every policy, SIMD
  // against portable: the same bits, the same verdict.
  const auto compare = [&]<terse::compress::overflow Policy>() {
    for (std::size_t count : {n, n - 5, std::size_t{17}}) {
      std::vector<std::byte> simd(2 * n), portable(2 * n);
      std::vector<float> e_simd(n), e_portable(n);
      const bool ok_simd = cast_encode_simd<Storage, Policy>(values.data(), nullptr, nullptr, count, simd.data());
      const bool ok_portable =
          cast_encode_portable<Storage, Policy>(values.data(), nullptr, nullptr, count, portable.data());
      CHECK(ok_simd == ok_portable);
      bool overflows = false;
      for (std::size_t i = 0; i < count; ++i) {
        overflows = overflows || terse::detail::cast_rule<Storage>::overflows(values[i]);
      }
      CHECK(ok_simd == (Policy != terse::compress::overflow::raise || !overflows));
      CHECK(simd == portable);
      const bool finite_simd =
          cast_encode_simd<Storage, Policy>(values.data(), e_old.data(), e_simd.data(), count, simd.data());
      const bool finite_portable =
          cast_encode_portable<Storage, Policy>(values.data(), e_old.data(), e_portable.data(), count, portable.data());
      CHECK(finite_simd == finite_portable);
      CHECK(simd == portable);
      CHECK(same_bits(e_simd, e_portable));
    }
  };
  compare.template operator()<terse::compress::overflow::raise>();
  compare.template operator()<terse::compress::overflow::infinity>();
  compare.template operator()<terse::compress::overflow::saturate>();
  // every 16-bit pattern: the finiteness check and the widening
  std::vector<std::uint16_t> patterns(0x10000);
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    patterns[h] = static_cast<std::uint16_t>(h);
  }
  const auto* bytes = reinterpret_cast<const std::byte*>(patterns.data());
  std::vector<float> wide_simd(0x10000), wide_portable(0x10000);
  cast_decode_simd<Storage, false>(bytes, 0x10000, wide_simd.data());
  cast_decode_portable<Storage, false>(bytes, 0x10000, wide_portable.data());
  std::size_t differ = 0;
  for (std::size_t h = 0; h < 0x10000u; ++h) {
    // NaN payloads may differ (F16C quiets signalling NaNs); decode_add
    // refuses NaN patterns before converting anything.
    if (!std::isnan(wide_portable[h])) {
      differ += std::memcmp(&wide_simd[h], &wide_portable[h], 4) != 0 ? 1 : 0;
    }
  }
  CHECK(differ == 0);
  for (std::uint32_t start = 0; start < 0x10000u; start += 1024) {
    CHECK(cast_all_finite_simd<Storage>(bytes + 2 * start, 1024) ==
          cast_all_finite_portable<Storage>(bytes + 2 * start, 1024));
  }
  std::vector<float> bad(100, 1.0f);
  bad[50] = NAN;
  std::vector<std::byte> out(200);
  CHECK(!cast_encode_simd<Storage>(bad.data(), nullptr, nullptr, 100, out.data()));
  bad[50] = -INFINITY;
  CHECK(!cast_encode_simd<Storage>(bad.data(), nullptr, nullptr, 100, out.data()));
}

#endif  // TERSE_CAST_SIMD

#if TERSE_CAST_AVX512

TEST_CASE("cast AVX-512: bf16 encode equals the portable one at every size, offset and store kind")
{
  const terse::random_stream bits_stream{.seed = 9, .step = 3, .stream = 4};
  const std::size_t most = 4099;
  std::vector<float> values(most), e_old(most);
  for (std::size_t i = 0; i < most; ++i) {
    std::uint32_t b = bits_stream.bits(i);
    if (i % 5 != 0) {
      b = (b & 0x80ffffffu) | 0x3c000000u;  // mostly ordinary magnitudes
    } else if ((b & 0x7f800000u) == 0x7f800000u) {
      b &= 0xbfffffffu;  // finite, but some beyond the bf16 range
    }
    std::memcpy(&values[i], &b, 4);
    e_old[i] = values[(i * 7) % most] * 1e-3f;
  }
  constexpr std::size_t guard = 64;
  const auto compare = [&]<terse::compress::overflow Policy>() {
    for (std::size_t count : {0, 1, 15, 16, 31, 32, 33, 95, 1000, 4099}) {
      for (std::size_t offset : {0, 1, 2, 6, 30, 62}) {
        for (bool streaming : {false, true}) {
          for (bool residual : {false, true}) {
            CAPTURE(count);
            CAPTURE(offset);
            CAPTURE(streaming);
            CAPTURE(residual);
            std::vector<std::byte> wide(2 * most + 2 * guard, std::byte{0xA5});
            std::vector<std::byte> portable(2 * most);
            std::vector<float> e_wide(most + 1, -7.0f), e_portable(most);
            std::byte* out = wide.data() + guard + offset;
            const float* e_in = residual ? e_old.data() : nullptr;
            const bool ok = cast_encode_bf16_avx512<Policy>(values.data(), e_in, residual ? e_wide.data() : nullptr,
                                                            count, out, streaming);
            const bool ok_portable = cast_encode_portable<terse::bf16, Policy>(
                values.data(), e_in, residual ? e_portable.data() : nullptr, count, portable.data());
            CHECK(ok == ok_portable);
            CHECK(std::memcmp(out, portable.data(), 2 * count) == 0);
            std::size_t touched = 0;  // bytes written outside the payload
            for (std::size_t k = 0; k < wide.size(); ++k) {
              const bool inside = k >= guard + offset && k < guard + offset + 2 * count;
              touched += !inside && wide[k] != std::byte{0xA5} ? 1 : 0;
            }
            CHECK(touched == 0);
            if (residual) {
              CHECK(std::memcmp(e_wide.data(), e_portable.data(), 4 * count) == 0);
              CHECK(e_wide[count] == -7.0f);
            }
          }
        }
      }
    }
  };
  compare.template operator()<terse::compress::overflow::raise>();
  compare.template operator()<terse::compress::overflow::infinity>();
  compare.template operator()<terse::compress::overflow::saturate>();
  std::vector<float> bad(100, 1.0f);
  std::vector<std::byte> out(200);
  for (float special : {NAN, -INFINITY, INFINITY}) {
    for (std::size_t at : {0, 40, 99}) {
      bad.assign(100, 1.0f);
      bad[at] = special;
      CHECK(!cast_encode_bf16_avx512<terse::compress::overflow::infinity>(bad.data(), nullptr, nullptr, 100, out.data(),
                                                                          true));
      CHECK(!cast_encode_bf16_avx512<terse::compress::overflow::saturate>(bad.data(), nullptr, nullptr, 100, out.data(),
                                                                          false));
    }
  }
}

#endif  // TERSE_CAST_AVX512

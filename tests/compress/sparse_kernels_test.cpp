// The sparsifiers' vectorised kernels against their scalar fallbacks. In
// sparse_avx2_tests (built with -mavx2) this compares the AVX2 paths with
// the portable loops; in the baseline build both sides are the scalar loop.
#include <terse/compress/detail/sparse_filter.hpp>
#include <terse/compress/detail/sparse_math.hpp>
#include <terse/compress/detail/sparse_select.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "codec_test_support.hpp"
#include "sparse_test_support.hpp"

#if defined(TERSE_SPARSE_EXPECT_AVX2) && !defined(__AVX2__)
#error "sparse_avx2_tests must be compiled with AVX2 enabled"
#endif

namespace {

std::vector<std::vector<float>> kernel_inputs()
{
  std::vector<std::vector<float>> inputs;
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 1000u, 65537u}) {
    inputs.push_back(sparse_test::quantised(n, n, 6, 0.5f));
    inputs.push_back(codec_test::gradient_like(n, n + 1));
  }
  inputs.push_back({0.0f, -0.0f, std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::max(),
                    std::numeric_limits<float>::max(), 1.0f, -1.0f, 0.5f, 2.0f, -0.0f, 3.0f});
  return inputs;
}

const std::uint32_t thresholds[] = {0u,
                                    1u,
                                    terse::detail::magnitude_key(0.01f),
                                    terse::detail::magnitude_key(1.0f),
                                    terse::detail::magnitude_key(1.5f),
                                    0x7f7fffffu,
                                    terse::detail::non_finite_key};

}  // namespace

TEST_CASE("sparse filter: the fast path keeps the same pairs as the scalar loop")
{
  for (const auto& v : kernel_inputs()) {
    for (std::uint32_t t : thresholds) {
      CAPTURE(v.size());
      CAPTURE(t);
      const std::size_t room = v.size() + 8;
      std::vector<std::byte> fast_index(4 * room), fast_bits(4 * room), slow_index(4 * room), slow_bits(4 * room);
      const std::size_t fast =
          terse::detail::filter_at_least(v.data(), v.size(), t, 5, fast_index.data(), fast_bits.data());
      const std::size_t slow =
          terse::detail::filter_at_least_scalar(v.data(), v.size(), t, 5, slow_index.data(), slow_bits.data());
      REQUIRE(fast == slow);
      CHECK(std::vector<std::byte>(fast_index.begin(), fast_index.begin() + 4 * fast) ==
            std::vector<std::byte>(slow_index.begin(), slow_index.begin() + 4 * slow));
      CHECK(std::vector<std::byte>(fast_bits.begin(), fast_bits.begin() + 4 * fast) ==
            std::vector<std::byte>(slow_bits.begin(), slow_bits.begin() + 4 * slow));
      std::size_t expected = 0;
      for (float x : v) {
        expected += terse::detail::magnitude_key(x) >= t ? 1u : 0u;
      }
      CHECK(fast == expected);
    }
  }
}

TEST_CASE("sparse residual filter: the fast path equals the scalar loop, p and all")
{
  for (const auto& g : kernel_inputs()) {
    const auto e = sparse_test::quantised(g.size(), 3, 2, 0.25f);
    for (std::uint32_t t : thresholds) {
      for (bool zero : {false, true}) {
        CAPTURE(g.size());
        CAPTURE(t);
        CAPTURE(zero);
        const std::size_t room = g.size() + 8;
        std::vector<std::byte> fi(4 * room), fb(4 * room), si(4 * room), sb(4 * room);
        std::vector<float> fp(g.size()), sp(g.size());
        const std::size_t fast =
            terse::detail::filter_residual(g.data(), e.data(), fp.data(), g.size(), t, zero, 0, fi.data(), fb.data());
        const std::size_t slow = terse::detail::filter_residual_scalar(g.data(), e.data(), sp.data(), g.size(), t, zero,
                                                                       0, si.data(), sb.data());
        REQUIRE(fast == slow);
        CHECK(std::vector<std::byte>(fi.begin(), fi.begin() + 4 * fast) ==
              std::vector<std::byte>(si.begin(), si.begin() + 4 * slow));
        CHECK(std::vector<std::byte>(fb.begin(), fb.begin() + 4 * fast) ==
              std::vector<std::byte>(sb.begin(), sb.begin() + 4 * slow));
        for (std::size_t i = 0; i < g.size(); ++i) {
          REQUIRE(terse::detail::float_bits(fp[i]) == terse::detail::float_bits(sp[i]));
        }
      }
    }
  }
}

TEST_CASE("sparse band and pair kernels: the fast path equals the scalar loop")
{
  for (const auto& v : kernel_inputs()) {
    std::vector<std::uint32_t> bits(v.size()), index(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      bits[i] = terse::detail::float_bits(v[i]);
      index[i] = static_cast<std::uint32_t>(3 * i + 1);
    }
    for (std::uint32_t lo : thresholds) {
      for (std::uint32_t hi : {lo, terse::detail::magnitude_key(2.0f), 0x7fffffffu}) {
        CAPTURE(v.size());
        CAPTURE(lo);
        CAPTURE(hi);
        std::vector<std::uint32_t> fast_keys(v.size() + 8), slow_keys(v.size() + 8);
        const auto fast = terse::detail::band_keys(bits.data(), bits.size(), lo, hi, fast_keys.data());
        const auto slow = terse::detail::band_keys_scalar(bits.data(), bits.size(), lo, hi, slow_keys.data());
        CHECK(fast.above == slow.above);
        REQUIRE(fast.inside == slow.inside);
        fast_keys.resize(fast.inside);
        slow_keys.resize(slow.inside);
        CHECK(fast_keys == slow_keys);
      }
      std::vector<std::byte> fi(4 * v.size() + 32), fb(4 * v.size() + 32), si(4 * v.size() + 32), sb(4 * v.size() + 32);
      const std::size_t fast =
          terse::detail::compact_pairs_at_least(index.data(), bits.data(), v.size(), lo, fi.data(), fb.data());
      const std::size_t slow =
          terse::detail::compact_pairs_at_least_scalar(index.data(), bits.data(), v.size(), lo, si.data(), sb.data());
      REQUIRE(fast == slow);
      CHECK(std::vector<std::byte>(fi.begin(), fi.begin() + 4 * fast) ==
            std::vector<std::byte>(si.begin(), si.begin() + 4 * slow));
      CHECK(std::vector<std::byte>(fb.begin(), fb.begin() + 4 * fast) ==
            std::vector<std::byte>(sb.begin(), sb.begin() + 4 * slow));
    }
  }
}

TEST_CASE("sparse selection: the k-th largest candidate key is exact, also when the bracket misses")
{
  for (std::size_t c : {1u, 100u, 8192u, 8193u, 50000u, 300000u}) {
    for (int pattern = 0; pattern < 3; ++pattern) {
      terse::detail::sparse_workspace ws;
      ws.reserve_candidates(c);
      ws.count = c;
      const auto v = pattern == 1 ? sparse_test::quantised(c, c, 3) : codec_test::gradient_like(c, c);
      for (std::size_t j = 0; j < c; ++j) {
        ws.index()[j] = static_cast<std::uint32_t>(j);
        ws.bits()[j] = terse::detail::float_bits(v[j]);
      }
      if (pattern == 2 && c > 8192) {
        // Make exactly the keys the bracket is drawn from the largest, so the
        // bracket sits far above the answer.
        const std::size_t s = std::min<std::size_t>(c / 8, 16384);
        const std::size_t stride = c / s;
        for (std::size_t j = 0; j < s; ++j) {
          ws.bits()[j * stride + terse::detail::sample_jitter(static_cast<std::uint32_t>(j)) % stride] =
              terse::detail::float_bits(1000.0f + static_cast<float>(j));
        }
      }
      std::vector<std::uint32_t> keys(c);
      for (std::size_t j = 0; j < c; ++j) {
        keys[j] = terse::detail::magnitude_key_of_bits(ws.bits()[j]);
      }
      std::sort(keys.begin(), keys.end(), std::greater<>{});
      for (std::size_t t : {std::size_t{1}, c / 3 + 1, c / 2 + 1, (9 * c) / 10 + 1, c}) {
        if (t > c) {
          continue;
        }
        CAPTURE(c);
        CAPTURE(pattern);
        CAPTURE(t);
        CHECK(terse::detail::kth_largest_candidate(ws, t) == keys[t - 1]);
      }
    }
  }
}

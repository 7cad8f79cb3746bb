// compress::topk: exact selection (ties to the lower index) against a
// stable-sort reference on tie-heavy data and on inputs built to mislead the
// sampled threshold; exact byte counts; the malformed battery; non-finite
// input; fused residual.
#include <terse/compress/detail/sparse_select.hpp>
#include <terse/compress/topk.hpp>
#include <terse/core/concepts.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

#include "codec_test_support.hpp"
#include "sparse_test_support.hpp"

using terse::compress::topk;

static_assert(terse::concepts::compressor<topk>);
static_assert(terse::concepts::residual_fusing_compressor<topk>);
static_assert(topk::aggregation_kind == terse::aggregation::gather_only);
static_assert(!terse::concepts::summable_compressor<topk>);

namespace {

/// Encodes v and checks the payload equals the reference selection, byte for
/// byte (which also fixes the size at 24 + 8k).
void check_selection(topk& codec, const std::vector<float>& v)
{
  const std::size_t k = codec.pairs(v.size());
  CAPTURE(v.size());
  CAPTURE(k);
  const auto payload = codec_test::encode(codec, {}, v);
  const auto reference = sparse_test::reference_topk(v, k);
  CHECK(payload.size() == terse::wire::header_bytes + 8 * k);
  CHECK(payload == sparse_test::payload_for(terse::wire::codec_id::topk, codec.density, v.size(), reference, v));
  sparse_test::check_decodes_to_selection(codec_test::decode(codec, {}, payload, v.size()), v, reference);
}

}  // namespace

TEST_CASE("topk k = ceil(density n), at least 1, at most n")
{
  CHECK(topk{.density = 0.01f}.pairs(0) == 0);
  CHECK(topk{.density = 0.01f}.pairs(1) == 1);
  CHECK(topk{.density = 0.01f}.pairs(100) == 1);
  CHECK(topk{.density = 0.01f}.pairs(101) == 2);
  CHECK(topk{.density = 1e-9f}.pairs(1000) == 1);
  CHECK(topk{.density = 1.0f}.pairs(1000) == 1000);
  CHECK(topk{.density = 0.5f}.pairs(3) == 2);
  CHECK(topk{.density = 0.01f}.pairs(std::size_t{1} << 24) == 167773);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{99}, std::size_t{12345}}) {
    topk codec{.density = 0.03f};
    CHECK(codec.max_encoded_bytes(n) == 24 + 8 * codec.pairs(n));
  }
  CHECK(codec_test::error_code_of([] { (void)topk{.density = 0.0f}.pairs(10); }) == terse::errc::invalid_argument);
  CHECK(codec_test::error_code_of([] { (void)topk{.density = 1.5f}.pairs(10); }) == terse::errc::invalid_argument);
}

TEST_CASE("topk selects exactly the reference on tie-heavy data")
{
  for (std::size_t n : {1u, 2u, 7u, 100u, 1000u, 16384u, 16385u, 40000u, 300000u}) {
    for (float density : {1e-6f, 0.001f, 0.01f, 0.1f, 0.5f, 0.999f, 1.0f}) {
      CAPTURE(density);
      topk codec{.density = density};
      check_selection(codec, sparse_test::quantised(n, n + 1));
      check_selection(codec, sparse_test::quantised(n, n + 2, 1000, 1e-3f));
      check_selection(codec, codec_test::gradient_like(n, n + 3));
    }
  }
}

TEST_CASE("topk is exact on large inputs whatever the sample suggests")
{
  const std::size_t n = std::size_t{1} << 20;
  topk codec{.density = 0.01f};
  SUBCASE("gradient-like")
  {
    check_selection(codec, codec_test::gradient_like(n, 5));
  }
  SUBCASE("a few levels: ties straddle the cut")
  {
    check_selection(codec, sparse_test::quantised(n, 6, 3));
  }
  SUBCASE("constant")
  {
    check_selection(codec, std::vector<float>(n, -0.5f));
  }
  SUBCASE("all zeros")
  {
    check_selection(codec, std::vector<float>(n, 0.0f));
  }
  SUBCASE("sparser than k: zeros fill in index order")
  {
    std::vector<float> v(n, 0.0f);
    for (std::size_t i = 0; i < n; i += 997) {
      v[i] = (i % 3 == 0 ? -1.0f : 1.0f) * static_cast<float>(i % 17 + 1);
    }
    v[5] = -0.0f;
    check_selection(codec, v);
  }
  SUBCASE("huge values exactly where the sample looks: the threshold is too high")
  {
    // Rebuild the sample positions and make them the largest values, so the
    // first filter pass lets far fewer than k through.
    std::vector<float> v = codec_test::gradient_like(n, 8, 1e-3f);
    const std::size_t k = codec.pairs(n);
    const std::size_t blocks = terse::detail::strided_sample_blocks(n, k);
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t start = terse::detail::sample_block_start(b, n / blocks);
      for (std::size_t l = 0; l < terse::detail::sample_block; ++l) {
        v[start + l] = 100.0f + static_cast<float>(l);
      }
    }
    check_selection(codec, v);
  }
  SUBCASE("sampled values large and distinct, the rest mostly zero: every fallback, then zeros fill")
  {
    topk dense{.density = 0.1f};
    std::vector<float> v(n, 0.0f);
    const std::size_t k = dense.pairs(n);
    const std::size_t blocks = terse::detail::strided_sample_blocks(n, k);
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t start = terse::detail::sample_block_start(b, n / blocks);
      for (std::size_t l = 0; l < terse::detail::sample_block; ++l) {
        v[start + l] = 1.0f + static_cast<float>(b * terse::detail::sample_block + l);
      }
    }
    for (std::size_t i = 3; i < n; i += 101) {
      if (v[i] == 0.0f) {
        v[i] = -1e-30f;
      }
    }
    check_selection(dense, v);
  }
  SUBCASE("sampled values tiny: far more candidates than k")
  {
    std::vector<float> v = codec_test::gradient_like(n, 9);
    const std::size_t k = codec.pairs(n);
    const std::size_t blocks = terse::detail::strided_sample_blocks(n, k);
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t start = terse::detail::sample_block_start(b, n / blocks);
      for (std::size_t l = 0; l < terse::detail::sample_block; ++l) {
        v[start + l] = 1e-12f;
      }
    }
    check_selection(codec, v);
  }
}

TEST_CASE("topk handles every edge input by its policy")
{
  for (const auto& input : codec_test::edge_inputs()) {
    CAPTURE(input.name);
    for (float density : {0.01f, 0.3f, 1.0f}) {
      topk codec{.density = density};
      check_selection(codec, input.values);
    }
  }
  topk codec;
  const auto empty = codec_test::encode(codec, {}, {});
  CHECK(empty.size() == terse::wire::header_bytes);
  CHECK(codec_test::decode(codec, {}, empty, 0).empty());
}

TEST_CASE("topk keeps the sign of zero and of every value")
{
  topk codec{.density = 1.0f};
  const std::vector<float> v{-0.0f, 0.0f, -1.5f, std::numeric_limits<float>::denorm_min()};
  const auto payload = codec_test::encode(codec, {}, v);
  for (std::size_t j = 0; j < v.size(); ++j) {
    CHECK(terse::wire::load<std::uint32_t>(payload.data() + 24 + 16 + 4 * j) == terse::detail::float_bits(v[j]));
  }
}

TEST_CASE("topk rejects malformed payloads and leaves the accumulator alone")
{
  topk codec{.density = 0.05f};
  const auto v = codec_test::gradient_like(1000, 3);
  const auto payload = codec_test::encode(codec, {}, v);
  codec_test::check_rejects_malformed(codec, {}, payload, v.size());
  sparse_test::check_rejects_bad_pairs(codec, {}, payload, v.size());
  {
    // A density that does not imply the pair count.
    auto bad = payload;
    terse::wire::store<float>(bad.data() + 4, 0.5f);
    std::vector<float> acc(v.size(), 1.0f);
    CHECK(codec_test::error_code_of([&] {
            codec.decode_add({}, terse::host_span<const std::byte>(bad), terse::host_span<float>(acc));
          }) == terse::errc::malformed_payload);
  }
  // A payload from another density decodes fine: the header carries it.
  topk other{.density = 0.5f};
  const auto foreign = codec_test::encode(other, {}, v);
  CHECK(codec_test::decode(codec, {}, foreign, v.size()) == codec_test::round_trip(other, {}, v));
}

TEST_CASE("topk refuses NaN and Inf anywhere in the input")
{
  topk codec{.density = 0.01f};
  codec_test::check_rejects_non_finite(codec, {});
  // Also where the sampled path runs, and with every value sent.
  for (float density : {0.001f, 1.0f}) {
    topk c{.density = density};
    for (std::size_t at : {std::size_t{0}, std::size_t{77777}, (std::size_t{1} << 18) - 1}) {
      auto v = codec_test::gradient_like(std::size_t{1} << 18, 4);
      v[at] = std::numeric_limits<float>::quiet_NaN();
      std::vector<std::byte> out(c.max_encoded_bytes(v.size()));
      CHECK(codec_test::error_code_of([&] { c.encode({}, v, out); }) == terse::errc::non_finite);
      v[at] = -std::numeric_limits<float>::infinity();
      CHECK(codec_test::error_code_of([&] { c.encode({}, v, out); }) == terse::errc::non_finite);
    }
  }
}

TEST_CASE("topk checks its output buffer")
{
  topk codec;
  const auto v = codec_test::gradient_like(1000);
  std::vector<std::byte> out(codec.max_encoded_bytes(v.size()) - 1);
  CHECK(codec_test::error_code_of([&] { codec.encode({}, v, out); }) == terse::errc::invalid_argument);
}

TEST_CASE("topk encode_residual codes g + e and keeps what it did not send")
{
  for (std::size_t n : {1u, 500u, 20000u, 200000u}) {
    CAPTURE(n);
    topk codec{.density = 0.02f};
    const auto g = codec_test::gradient_like(n, 11);
    const auto e_old = sparse_test::quantised(n, 12, 4, 1e-3f);
    std::vector<float> p(n);
    for (std::size_t i = 0; i < n; ++i) {
      p[i] = g[i] + e_old[i];
    }
    std::vector<float> e_new(n, 99.0f);
    std::vector<std::byte> out(codec.max_encoded_bytes(n));
    const std::size_t used = codec.encode_residual({}, g, e_old, e_new, out);
    out.resize(used);
    CHECK(out == codec_test::encode(codec, {}, p));
    const auto decoded = codec_test::decode(codec, {}, out, n);
    std::vector<float> expected(n);
    for (std::size_t i = 0; i < n; ++i) {
      expected[i] = p[i] - decoded[i];
    }
    CHECK(e_new == expected);
    // In place: e_new aliasing e_old.
    auto e_inout = e_old;
    std::vector<std::byte> out2(codec.max_encoded_bytes(n));
    out2.resize(codec.encode_residual({}, g, e_inout, e_inout, out2));
    CHECK(out2 == out);
    CHECK(e_inout == e_new);
  }
}

TEST_CASE("topk prints its settings")
{
  std::ostringstream os;
  os << topk{.density = 0.25f};
  CHECK(os.str() == "topk{density=0.25}");
}

TEST_CASE("topk and dgc: k = ceil(density * n) with the float density's rounding forgiven")
{
  // 0.1f is 0.100000001..., 0.001f is 0.00100000005...: the plain ceiling of
  // the product gave one pair too many.
  CHECK(terse::detail::topk_count(0.1f, 1000) == 100);
  CHECK(terse::detail::topk_count(0.001f, 1000000) == 1000);
  CHECK(terse::detail::topk_count(0.07f, 100) == 7);
  CHECK(terse::detail::topk_count(0.01f, 1000) == 10);
  CHECK(terse::detail::topk_count(0.5f, 3) == 2);
  CHECK(terse::detail::topk_count(0.011f, 1000) == 11);
  CHECK(terse::detail::topk_count(0.0101f, 1000) == 11);  // 10.1: a real fraction still rounds up
  CHECK(terse::detail::topk_count(1e-9f, 1000) == 1);
  CHECK(terse::detail::topk_count(1.0f, 1000) == 1000);
  CHECK(terse::compress::topk{.density = 0.1f}.max_encoded_bytes(1000) == 24 + 8 * 100);
}

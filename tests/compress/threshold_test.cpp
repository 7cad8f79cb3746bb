// compress::threshold: sends exactly {i : |v_i| >= tau} (±0 and equality
// included), variable size 24 + 8c, the malformed battery (plus values below
// tau), non-finite input, fused residual.
#include <terse/compress/threshold.hpp>
#include <terse/core/concepts.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

#include "codec_test_support.hpp"
#include "sparse_test_support.hpp"

using terse::compress::threshold;

static_assert(terse::concepts::compressor<threshold>);
static_assert(terse::concepts::residual_fusing_compressor<threshold>);
static_assert(threshold::aggregation_kind == terse::aggregation::gather_only);

namespace {

std::vector<std::uint32_t> reference_threshold(const std::vector<float>& v, float tau)
{
  std::vector<std::uint32_t> out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::fabs(v[i]) >= tau) {
      out.push_back(static_cast<std::uint32_t>(i));
    }
  }
  return out;
}

void check_threshold(const threshold& codec, const std::vector<float>& v)
{
  CAPTURE(v.size());
  CAPTURE(codec.tau);
  const auto payload = codec_test::encode(codec, {}, v);
  const auto reference = reference_threshold(v, codec.tau);
  CHECK(payload.size() == terse::wire::header_bytes + 8 * reference.size());
  const float canonical_tau = std::fabs(codec.tau);  // -0 is written as +0
  CHECK(payload == sparse_test::payload_for(terse::wire::codec_id::threshold, canonical_tau, v.size(), reference, v));
  sparse_test::check_decodes_to_selection(codec_test::decode(codec, {}, payload, v.size()), v, reference);
}

}  // namespace

TEST_CASE("threshold sends every |v| >= tau, equality included")
{
  for (std::size_t n : {1u, 9u, 1000u, 100003u}) {
    for (float tau : {0.0f, -0.0f, 0.25f, 0.5f, 1.0f, 2.0f, 100.0f}) {
      check_threshold(threshold{.tau = tau}, sparse_test::quantised(n, n));
    }
    for (float tau : {1e-4f, 1e-2f, 3e-2f}) {
      check_threshold(threshold{.tau = tau}, codec_test::gradient_like(n, n));
    }
  }
}

TEST_CASE("threshold at zero sends every value, signed zeros included")
{
  const std::vector<float> v{0.0f, -0.0f, 1.0f, -0.0f};
  threshold codec{.tau = 0.0f};
  const auto payload = codec_test::encode(codec, {}, v);
  CHECK(payload.size() == 24 + 8 * 4);
  CHECK(terse::wire::load<std::uint32_t>(payload.data() + 24 + 16 + 4) == 0x80000000u);
  threshold positive{.tau = std::numeric_limits<float>::denorm_min()};
  CHECK(codec_test::encode(positive, {}, v).size() == 24 + 8);  // only the 1
}

TEST_CASE("threshold handles every edge input by its policy")
{
  for (const auto& input : codec_test::edge_inputs()) {
    CAPTURE(input.name);
    for (float tau : {0.0f, std::numeric_limits<float>::denorm_min(), 1e-3f, 1.0f, std::numeric_limits<float>::max()}) {
      check_threshold(threshold{.tau = tau}, input.values);
    }
  }
}

TEST_CASE("threshold bounds its size by 24 + 8n and refuses bad settings")
{
  threshold codec;
  CHECK(codec.max_encoded_bytes(0) == 24);
  CHECK(codec.max_encoded_bytes(1000) == 24 + 8000);
  const auto v = codec_test::gradient_like(100);
  std::vector<std::byte> out(codec.max_encoded_bytes(v.size()) - 1);
  CHECK(codec_test::error_code_of([&] { codec.encode({}, v, out); }) == terse::errc::invalid_argument);
  out.resize(codec.max_encoded_bytes(v.size()));
  for (float tau : {-1.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    threshold bad{.tau = tau};
    CHECK(codec_test::error_code_of([&] { bad.encode({}, v, out); }) == terse::errc::invalid_argument);
  }
}

TEST_CASE("threshold rejects malformed payloads and values below tau")
{
  threshold codec{.tau = 0.01f};
  const auto v = codec_test::gradient_like(3000, 21);
  const auto payload = codec_test::encode(codec, {}, v);
  codec_test::check_rejects_malformed(codec, {}, payload, v.size());
  sparse_test::check_rejects_bad_pairs(codec, {}, payload, v.size());
  const auto c = terse::wire::load<std::uint64_t>(payload.data() + 16);
  auto below = payload;
  terse::wire::store<float>(below.data() + 24 + 4 * c, 0.005f);
  std::vector<float> acc(v.size(), 1.0f);
  CHECK(codec_test::error_code_of([&] {
          codec.decode_add({}, terse::host_span<const std::byte>(below), terse::host_span<float>(acc));
        }) == terse::errc::malformed_payload);
  auto negative_zero_tau = payload;
  terse::wire::store<std::uint32_t>(negative_zero_tau.data() + 4, 0x80000000u);
  CHECK(codec_test::error_code_of([&] {
          codec.decode_add({}, terse::host_span<const std::byte>(negative_zero_tau), terse::host_span<float>(acc));
        }) == terse::errc::malformed_payload);
  CHECK(acc == std::vector<float>(v.size(), 1.0f));
  // An empty selection is a valid payload.
  threshold high{.tau = 1e9f};
  const auto none = codec_test::encode(high, {}, v);
  CHECK(none.size() == 24);
  CHECK(codec_test::decode(codec, {}, none, v.size()) == std::vector<float>(v.size(), 0.0f));
}

TEST_CASE("threshold refuses NaN and Inf anywhere in the input")
{
  threshold codec{.tau = 0.01f};
  codec_test::check_rejects_non_finite(codec, {});
  threshold zero{.tau = 0.0f};
  codec_test::check_rejects_non_finite(zero, {});
  threshold huge{.tau = std::numeric_limits<float>::max()};
  codec_test::check_rejects_non_finite(huge, {});
}

TEST_CASE("threshold encode_residual codes g + e and zeroes what it sent, in one pass")
{
  for (std::size_t n : {0u, 3u, 1000u, 65541u}) {
    CAPTURE(n);
    threshold codec{.tau = 0.012f};
    const auto g = codec_test::gradient_like(n, 31);
    const auto e_old = codec_test::gradient_like(n, 32, 3e-3f);
    std::vector<float> p(n);
    for (std::size_t i = 0; i < n; ++i) {
      p[i] = g[i] + e_old[i];
    }
    std::vector<float> e_new(n, 7.0f);
    std::vector<std::byte> out(codec.max_encoded_bytes(n));
    out.resize(codec.encode_residual({}, g, e_old, e_new, out));
    CHECK(out == codec_test::encode(codec, {}, p));
    const auto decoded = codec_test::decode(codec, {}, out, n);
    std::vector<float> expected(n);
    for (std::size_t i = 0; i < n; ++i) {
      expected[i] = p[i] - decoded[i];
    }
    CHECK(e_new == expected);
  }
}

TEST_CASE("threshold prints its settings")
{
  std::ostringstream os;
  os << threshold{.tau = 0.5f};
  CHECK(os.str() == "threshold{tau=0.5}");
}

// compress::dgc: counts within the tolerance band or exactly the reference
// top-k after refinement; threshold reuse per bucket; save/load of the
// thresholds; determinism; the malformed battery; non-finite input; fused
// residual.
#include <terse/compress/dgc.hpp>
#include <terse/compress/topk.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/state_io.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

#include "codec_test_support.hpp"
#include "sparse_test_support.hpp"

using terse::compress::dgc;

static_assert(terse::concepts::compressor<dgc>);
static_assert(terse::concepts::residual_fusing_compressor<dgc>);
static_assert(dgc::aggregation_kind == terse::aggregation::gather_only);

namespace {

std::size_t pairs_in(const std::vector<std::byte>& payload)
{
  return static_cast<std::size_t>(terse::wire::load<std::uint64_t>(payload.data() + 16));
}

/// Every value the payload sends is at least as large as every value it
/// does not send (a threshold selection), and the decode is the selection.
void check_is_threshold_selection(dgc& codec, const std::vector<float>& v, const std::vector<std::byte>& payload)
{
  const auto indices = sparse_test::indices_of(payload);
  std::vector<char> sent(v.size(), 0);
  std::uint32_t least_sent = std::numeric_limits<std::uint32_t>::max();
  for (std::uint32_t i : indices) {
    sent[i] = 1;
    least_sent = std::min(least_sent, terse::detail::magnitude_key(v[i]));
  }
  std::uint32_t most_unsent = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (sent[i] == 0) {
      most_unsent = std::max(most_unsent, terse::detail::magnitude_key(v[i]));
    }
  }
  if (!indices.empty() && indices.size() < v.size()) {
    CHECK(least_sent >= most_unsent);
  }
  CHECK(payload == sparse_test::payload_for(terse::wire::codec_id::dgc, codec.density, v.size(), indices, v));
  sparse_test::check_decodes_to_selection(codec_test::decode(codec, {}, payload, v.size()), v, indices);
}

/// The payload topk would send, relabelled as dgc.
std::vector<std::byte> exact_topk_as_dgc(float density, const std::vector<float>& v)
{
  const std::size_t k = static_cast<std::size_t>(terse::detail::topk_count(density, v.size()));
  return sparse_test::payload_for(terse::wire::codec_id::dgc, density, v.size(), sparse_test::reference_topk(v, k), v);
}

/// Distinct magnitudes in random order (no ties anywhere).
std::vector<float> distinct_magnitudes(std::size_t n, std::uint64_t seed)
{
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = (i % 2 == 0 ? 1.0f : -1.0f) * static_cast<float>(i + 1) * 1e-3f;
  }
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

}  // namespace

TEST_CASE("dgc sizes: at most min(n, k + floor(tolerance k)) pairs")
{
  dgc codec{.density = 0.01f, .tolerance = 0.2f};
  CHECK(codec.pairs(100000) == 1000);
  CHECK(codec.max_pairs(100000) == 1200);
  CHECK(codec.max_encoded_bytes(100000) == 24 + 8 * 1200);
  CHECK(codec.max_encoded_bytes(0) == 24);
  CHECK(codec.max_pairs(3) == 1);
  dgc all{.density = 1.0f, .tolerance = 0.5f};
  CHECK(all.max_pairs(10) == 10);
  CHECK(codec_test::error_code_of([] { (void)dgc{.tolerance = 1.0f}.pairs(10); }) == terse::errc::invalid_argument);
  CHECK(codec_test::error_code_of([] { (void)dgc{.sample_fraction = 0.0f}.pairs(10); }) ==
        terse::errc::invalid_argument);
}

TEST_CASE("dgc sends a count within the tolerance, or exactly the top k")
{
  for (std::size_t n : {1u, 50u, 5000u, 100000u, 1u << 20}) {
    for (float density : {0.001f, 0.01f, 0.1f}) {
      CAPTURE(n);
      CAPTURE(density);
      dgc codec{.density = density, .tolerance = 0.2f, .reuse_threshold = false};
      for (std::uint64_t step = 0; step < 3; ++step) {
        const auto v = codec_test::gradient_like(n, 40 + step);
        terse::codec_context ctx{.seed = 5, .step = step};
        std::vector<std::byte> payload(codec.max_encoded_bytes(n));
        payload.resize(codec.encode(ctx, v, payload));
        const std::size_t k = codec.pairs(n);
        const std::size_t c = pairs_in(payload);
        CHECK(c + static_cast<std::size_t>(std::floor(0.2 * static_cast<double>(k))) >= k);
        CHECK(c <= codec.max_pairs(n));
        check_is_threshold_selection(codec, v, payload);
      }
    }
  }
}

TEST_CASE("dgc with zero tolerance is exact top-k, ties to the lower index")
{
  for (std::size_t n : {7u, 1000u, 30000u, 200000u}) {
    CAPTURE(n);
    dgc codec{.density = 0.05f, .tolerance = 0.0f};
    for (std::uint64_t step = 0; step < 3; ++step) {
      const auto v = sparse_test::quantised(n, step + 1, 5);  // ties at every level
      const terse::codec_context ctx{.step = step};
      CHECK(codec_test::encode(codec, ctx, v) == exact_topk_as_dgc(codec.density, v));
    }
  }
}

TEST_CASE("dgc refines a threshold that lets far too many through to exactly the top k")
{
  const std::size_t n = 100000;
  dgc codec{.density = 0.01f};
  const auto small = codec_test::gradient_like(n, 1, 1e-6f);
  (void)codec_test::encode(codec, {}, small);  // leaves a tiny threshold for bucket 0
  const auto v = codec_test::gradient_like(n, 2, 1.0f);
  CHECK(codec_test::encode(codec, {}, v) == exact_topk_as_dgc(codec.density, v));
}

TEST_CASE("dgc refines a threshold that lets far too few through to exactly the top k")
{
  const std::size_t n = 100000;
  dgc codec{.density = 0.01f};
  (void)codec_test::encode(codec, {}, codec_test::gradient_like(n, 1, 1e3f));  // a huge threshold
  const auto v = codec_test::gradient_like(n, 2, 1.0f);
  CHECK(codec_test::encode(codec, {}, v) == exact_topk_as_dgc(codec.density, v));
  SUBCASE("and with fewer than k nonzeros, zeros fill in index order")
  {
    std::vector<float> sparse(n, 0.0f);
    for (std::size_t i = 0; i < n; i += 1009) {
      sparse[i] = 3.0f;
    }
    CHECK(codec_test::encode(codec, {}, sparse) == exact_topk_as_dgc(codec.density, sparse));
  }
}

TEST_CASE("dgc reuses each bucket's last threshold")
{
  const std::size_t n = 200000;
  dgc codec{.density = 0.01f, .tolerance = 0.2f};
  const auto v = distinct_magnitudes(n, 3);  // no ties: the k-th magnitude passes exactly k
  terse::codec_context bucket0{.bucket = 0};
  terse::codec_context bucket1{.bucket = 1};
  // A refinement ends on the exact k-th magnitude; reusing it on the same
  // values passes exactly k again without sampling.
  codec.thresholds.set(0, 1);  // far too low: forces the cut
  CHECK(codec_test::encode(codec, bucket0, v) == exact_topk_as_dgc(codec.density, v));
  const auto kept = codec.thresholds.find(0);
  REQUIRE(kept.has_value());
  CHECK(codec_test::encode(codec, bucket0, v) == exact_topk_as_dgc(codec.density, v));
  CHECK(codec.thresholds.find(0) == kept);
  // A bucket of another scale keeps its own threshold.
  const auto w = codec_test::gradient_like(n, 4, 100.0f);
  (void)codec_test::encode(codec, bucket1, w);
  CHECK(codec.thresholds.find(0) == kept);
  CHECK(codec.thresholds.find(1) != kept);
  CHECK(codec.thresholds.size() == 2);
  // A reused threshold inside the band is sent as it is: set one that lets
  // a count between k and k + slack through.
  const std::size_t k = codec.pairs(n);
  auto keys = std::vector<std::uint32_t>(n);
  for (std::size_t i = 0; i < n; ++i) {
    keys[i] = terse::detail::magnitude_key(v[i]);
  }
  std::sort(keys.begin(), keys.end(), std::greater<>{});
  const std::uint32_t band_key = keys[k + k / 10];  // about 1.1k values pass
  codec.thresholds.set(0, band_key);
  const auto payload = codec_test::encode(codec, bucket0, v);
  std::size_t passing = 0;
  for (std::uint32_t key : keys) {
    passing += key >= band_key ? 1u : 0u;
  }
  CHECK(pairs_in(payload) == passing);
  CHECK(codec.thresholds.find(0) == band_key);
  check_is_threshold_selection(codec, v, payload);
  // Without reuse the same codec samples afresh (and still lands in the band).
  codec.reuse_threshold = false;
  const auto sampled = codec_test::encode(codec, bucket0, v);
  CHECK(pairs_in(sampled) + k / 5 >= k);
  CHECK(pairs_in(sampled) <= k + k / 5);
}

TEST_CASE("dgc: k steps, save, load, k steps equals 2k steps")
{
  const std::size_t n = 50000;
  const auto run = [&](dgc& codec, std::uint64_t from, std::uint64_t to) {
    std::vector<std::vector<std::byte>> payloads;
    for (std::uint64_t step = from; step < to; ++step) {
      for (std::uint32_t bucket = 0; bucket < 3; ++bucket) {
        const auto v = codec_test::gradient_like(n, step * 7 + bucket, std::pow(10.0f, static_cast<float>(bucket)));
        payloads.push_back(codec_test::encode(codec, {.seed = 9, .step = step, .bucket = bucket}, v));
      }
    }
    return payloads;
  };
  dgc straight{.density = 0.02f};
  const auto all = run(straight, 0, 6);

  dgc first{.density = 0.02f};
  auto part = run(first, 0, 3);
  std::stringstream blob;
  terse::state_writer writer(blob);
  first.save(writer);
  dgc second{.density = 0.02f};
  terse::state_reader reader(blob);
  second.load(reader);
  const auto rest = run(second, 3, 6);
  part.insert(part.end(), rest.begin(), rest.end());
  CHECK(part == all);

  // A blob from another policy is refused.
  std::stringstream wrong;
  terse::state_writer other(wrong);
  other.section("something else");
  terse::state_reader wrong_reader(wrong);
  CHECK(codec_test::error_code_of([&] { second.load(wrong_reader); }) == terse::errc::io);
}

TEST_CASE("dgc is deterministic in its context and samples privately per rank")
{
  const std::size_t n = 100000;
  const auto v = codec_test::gradient_like(n, 77);
  const terse::codec_context ctx{.seed = 3, .step = 4, .bucket = 2, .rank = 1, .world = 4};
  dgc a{.reuse_threshold = false};
  dgc b{.reuse_threshold = false};
  CHECK(codec_test::encode(a, ctx, v) == codec_test::encode(b, ctx, v));
  // Other ranks draw other samples: over a few ranks the thresholds differ.
  std::vector<std::uint32_t> thresholds;
  for (int rank = 0; rank < 4; ++rank) {
    dgc c{.reuse_threshold = false};
    terse::codec_context other = ctx;
    other.rank = rank;
    (void)codec_test::encode(c, other, v);
    thresholds.push_back(*c.thresholds.find(2));
  }
  std::sort(thresholds.begin(), thresholds.end());
  CHECK(std::unique(thresholds.begin(), thresholds.end()) - thresholds.begin() > 1);
}

TEST_CASE("dgc handles every edge input by its policy")
{
  for (const auto& input : codec_test::edge_inputs()) {
    CAPTURE(input.name);
    for (float density : {0.01f, 0.3f, 1.0f}) {
      dgc codec{.density = density};
      const auto payload = codec_test::encode(codec, {}, input.values);
      CHECK(pairs_in(payload) <= codec.max_pairs(input.values.size()));
      check_is_threshold_selection(codec, input.values, payload);
      dgc exact{.density = density, .tolerance = 0.0f};
      CHECK(codec_test::encode(exact, {}, input.values) == exact_topk_as_dgc(density, input.values));
    }
  }
}

TEST_CASE("dgc rejects malformed payloads and refuses non-finite input")
{
  dgc codec{.density = 0.05f};
  const auto v = codec_test::gradient_like(2000, 5);
  const auto payload = codec_test::encode(codec, {}, v);
  codec_test::check_rejects_malformed(codec, {}, payload, v.size());
  sparse_test::check_rejects_bad_pairs(codec, {}, payload, v.size());
  codec_test::check_rejects_non_finite(codec, {});
  dgc reused{.density = 0.05f};
  reused.thresholds.set(0, 0x7f000000u);  // a huge reused threshold still sees NaN and Inf
  codec_test::check_rejects_non_finite(reused, {});
  std::vector<std::byte> small(codec.max_encoded_bytes(v.size()) - 1);
  CHECK(codec_test::error_code_of([&] { codec.encode({}, v, small); }) == terse::errc::invalid_argument);
}

TEST_CASE("dgc encode_residual codes g + e and keeps what it did not send")
{
  for (std::size_t n : {10u, 4000u, 150000u}) {
    CAPTURE(n);
    const auto g = codec_test::gradient_like(n, 51);
    const auto e_old = codec_test::gradient_like(n, 52, 4e-3f);
    std::vector<float> p(n);
    for (std::size_t i = 0; i < n; ++i) {
      p[i] = g[i] + e_old[i];
    }
    for (std::uint32_t start : {0u, 1u, 0x7f000000u}) {  // reused thresholds: any, too low, too high
      dgc fused{.density = 0.01f};
      dgc plain{.density = 0.01f};
      if (start != 0) {
        fused.thresholds.set(0, start);
        plain.thresholds.set(0, start);
      }
      std::vector<float> e_new(n, 5.0f);
      std::vector<std::byte> out(fused.max_encoded_bytes(n));
      out.resize(fused.encode_residual({}, g, e_old, e_new, out));
      CHECK(out == codec_test::encode(plain, {}, p));
      const auto decoded = codec_test::decode(fused, {}, out, n);
      std::vector<float> expected(n);
      for (std::size_t i = 0; i < n; ++i) {
        expected[i] = p[i] - decoded[i];
      }
      CHECK(e_new == expected);
    }
  }
}

TEST_CASE("dgc prints its settings")
{
  std::ostringstream os;
  os << dgc{};
  CHECK(os.str() == "dgc{density=0.01, tolerance=0.2, sample_fraction=0.001, reuse_threshold=1}");
}

TEST_CASE("dgc and topk on every tiny size, zeros and not (a fuzz find: empty workspaces)")
{
  for (std::size_t n = 0; n < 160; ++n) {
    for (float density : {0.01f, 0.05f, 0.3f, 1.0f}) {
      for (bool zeros : {false, true}) {
        std::vector<float> v(n, 0.0f);
        if (!zeros) {
          v = sparse_test::quantised(n, n, 2);
        }
        CAPTURE(n);
        CAPTURE(density);
        dgc codec{.density = density, .tolerance = 0.0f};
        CHECK(codec_test::encode(codec, {}, v) == exact_topk_as_dgc(density, v));
        CHECK(codec_test::encode(codec, {}, v) == exact_topk_as_dgc(density, v));  // with the kept threshold
        dgc loose{.density = density};
        const auto payload = codec_test::encode(loose, {}, v);
        CHECK(pairs_in(payload) <= loose.max_pairs(n));
      }
    }
  }
}

#pragma once
// Shared by the sparsifier tests (topk, threshold, dgc): reference
// selections, tie-heavy inputs, payload construction and the sparse part of
// the malformed-payload battery.

#include <terse/compress/detail/sparse_math.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/philox.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "codec_test_support.hpp"

namespace sparse_test {

/// Values from a few levels (many exact ties, both zeros): q * step with q
/// uniform in [-levels, levels], and the sign of zero random too.
inline std::vector<float> quantised(std::size_t n, std::uint64_t seed, int levels = 8, float step = 0.25f)
{
  const terse::random_stream s{.seed = seed, .step = 1, .stream = 7};
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t bits = s.bits(i);
    const int q = static_cast<int>(bits % static_cast<std::uint32_t>(2 * levels + 1)) - levels;
    v[i] = static_cast<float>(q) * step;
    if (q == 0 && (bits >> 31) != 0) {
      v[i] = -0.0f;
    }
  }
  return v;
}

/// The reference top-k: stable sort by |v| descending (lower index first
/// among ties), the first k, then in index order.
inline std::vector<std::uint32_t> reference_topk(const std::vector<float>& v, std::size_t k)
{
  std::vector<std::uint32_t> order(v.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return terse::detail::magnitude_key(v[a]) > terse::detail::magnitude_key(v[b]);
  });
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

/// The payload a sparsifier must write for these pairs.
inline std::vector<std::byte> payload_for(terse::wire::codec_id id, float parameter, std::size_t n,
                                          const std::vector<std::uint32_t>& indices, const std::vector<float>& v)
{
  const std::size_t c = indices.size();
  std::vector<std::byte> out(terse::wire::header_bytes + 8 * c);
  terse::wire::write_header(
      terse::host_span<std::byte>(out),
      terse::wire::header{.codec = id, .param = terse::detail::float_bits(parameter), .count = n, .aux = c});
  for (std::size_t j = 0; j < c; ++j) {
    terse::wire::store<std::uint32_t>(out.data() + terse::wire::header_bytes + 4 * j, indices[j]);
    terse::wire::store<float>(out.data() + terse::wire::header_bytes + 4 * c + 4 * j, v[indices[j]]);
  }
  return out;
}

/// The indices a payload carries.
inline std::vector<std::uint32_t> indices_of(const std::vector<std::byte>& payload)
{
  const auto c = terse::wire::load<std::uint64_t>(payload.data() + 16);
  std::vector<std::uint32_t> out(c);
  for (std::size_t j = 0; j < c; ++j) {
    out[j] = terse::wire::load<std::uint32_t>(payload.data() + terse::wire::header_bytes + 4 * j);
  }
  return out;
}

/// decode(payload) must be v on the payload's indices and +0 elsewhere.
inline void check_decodes_to_selection(const std::vector<float>& decoded, const std::vector<float>& v,
                                       const std::vector<std::uint32_t>& indices)
{
  std::vector<float> expected(v.size(), 0.0f);
  for (std::uint32_t i : indices) {
    expected[i] = 0.0f + v[i];  // the accumulator starts at +0
  }
  CHECK(decoded == expected);
}

/// The sparse part of the malformed battery: `valid` must hold at least two
/// pairs. Every mutation is rejected with the accumulator untouched.
template <class Codec>
void check_rejects_bad_pairs(Codec& codec, const terse::codec_context& ctx, const std::vector<std::byte>& valid,
                             std::size_t n)
{
  const auto c = terse::wire::load<std::uint64_t>(valid.data() + 16);
  REQUIRE(c >= 2);
  const std::size_t idx = terse::wire::header_bytes;
  const std::size_t val = terse::wire::header_bytes + 4 * c;
  const auto index = [&](const std::vector<std::byte>& p, std::size_t j) {
    return terse::wire::load<std::uint32_t>(p.data() + idx + 4 * j);
  };
  const auto rejects = [&](std::vector<std::byte> bad, const char* what) {
    CAPTURE(what);
    std::vector<float> acc(n, 42.0f);
    CHECK(codec_test::error_code_of([&] {
            codec.decode_add(ctx, terse::host_span<const std::byte>(bad), terse::host_span<float>(acc));
          }) == terse::errc::malformed_payload);
    CHECK(acc == std::vector<float>(n, 42.0f));
  };
  {
    auto bad = valid;  // the first two indices swapped
    const std::uint32_t a = index(bad, 0), b = index(bad, 1);
    terse::wire::store<std::uint32_t>(bad.data() + idx, b);
    terse::wire::store<std::uint32_t>(bad.data() + idx + 4, a);
    rejects(bad, "unsorted indices");
  }
  {
    auto bad = valid;
    terse::wire::store<std::uint32_t>(bad.data() + idx + 4, index(bad, 0));
    rejects(bad, "duplicate index");
  }
  {
    auto bad = valid;
    terse::wire::store<std::uint32_t>(bad.data() + idx + 4 * (c - 1), static_cast<std::uint32_t>(n));
    rejects(bad, "index == n");
  }
  {
    auto bad = valid;
    terse::wire::store<std::uint32_t>(bad.data() + idx + 4 * (c - 1), 0xffffffffu);
    rejects(bad, "index 2^32 - 1");
  }
  for (float special : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity()}) {
    auto bad = valid;
    terse::wire::store<float>(bad.data() + val + 4 * (c / 2), special);
    rejects(bad, "non-finite value");
  }
  {
    auto bad = valid;  // one pair fewer claimed, length adjusted to match
    terse::wire::store<std::uint64_t>(bad.data() + 16, c - 1);
    bad.resize(bad.size() - 8);
    if (codec.id == terse::wire::codec_id::topk) {
      rejects(bad, "topk pair count that is not ceil(density n)");
    }
  }
  {
    auto bad = valid;
    terse::wire::store<std::uint64_t>(bad.data() + 16, n + 1);
    rejects(bad, "more pairs than values");
  }
  {
    auto bad = valid;
    terse::wire::store<std::uint64_t>(bad.data() + 16, std::numeric_limits<std::uint64_t>::max() / 4);
    rejects(bad, "pair count that overflows the length");
  }
  for (float param : {std::numeric_limits<float>::quiet_NaN(), -1.0f, std::numeric_limits<float>::infinity()}) {
    auto bad = valid;
    terse::wire::store<float>(bad.data() + 4, param);
    rejects(bad, "invalid parameter");
  }
}

}  // namespace sparse_test

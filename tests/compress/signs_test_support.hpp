#pragma once
// Helpers for the sign, terngrad and randomk tests: bit-exact comparisons,
// payload surgery and contexts.

#include <terse/core/numeric.hpp>
#include <terse/core/policy_types.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "codec_test_support.hpp"

namespace signs_test {

inline std::uint32_t bits(float v)
{
  return terse::detail::float_bits(v);
}

/// Same bit patterns (so -0 differs from +0 and NaN equals itself).
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b)
{
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

inline terse::codec_context context(std::uint64_t step = 3, int rank = 0, std::uint32_t bucket = 5)
{
  terse::codec_context ctx;
  ctx.seed = 0x5eed;
  ctx.step = step;
  ctx.bucket = bucket;
  ctx.rank = rank;
  ctx.world = 4;
  return ctx;
}

inline float load_float(const std::vector<std::byte>& payload, std::size_t at)
{
  float v;
  std::memcpy(&v, payload.data() + at, sizeof v);
  return v;
}

inline void store_float(std::vector<std::byte>& payload, std::size_t at, float v)
{
  std::memcpy(payload.data() + at, &v, sizeof v);
}

inline void store_u32(std::vector<std::byte>& payload, std::size_t at, std::uint32_t v)
{
  std::memcpy(payload.data() + at, &v, sizeof v);
}

inline void store_u64(std::vector<std::byte>& payload, std::size_t at, std::uint64_t v)
{
  std::memcpy(payload.data() + at, &v, sizeof v);
}

/// Expects `payload` to be refused with malformed_payload, acc untouched.
template <class Codec>
void expect_malformed(Codec& codec, const terse::codec_context& ctx, const std::vector<std::byte>& payload,
                      std::size_t n)
{
  std::vector<float> acc(n, 42.0f);
  CHECK(codec_test::error_code_of([&] {
          codec.decode_add(ctx, terse::host_span<const std::byte>(payload), terse::host_span<float>(acc));
        }) == terse::errc::malformed_payload);
  CHECK(acc == std::vector<float>(n, 42.0f));
}

/// Inputs that exercise every bucket tail: random values with exact zeros,
/// both signed zeros and a few ties.
inline std::vector<float> mixed(std::size_t n, std::uint64_t seed = 7)
{
  std::vector<float> v = codec_test::gradient_like(n, seed);
  for (std::size_t i = 0; i < n; i += 11) {
    v[i] = (i / 11) % 2 == 0 ? 0.0f : -0.0f;
  }
  return v;
}

}  // namespace signs_test

#pragma once
// Shared by every codec's tests: inputs (gradient-like, edge cases), encode
// and decode round trips, and the malformed-payload battery every decoder
// must pass.

#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/philox.hpp>
#include <terse/core/policy_types.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace codec_test {

/// Approximately normal values (sum of 4 uniforms, centred), scaled: a
/// stand-in for a gradient. Deterministic in (n, seed).
inline std::vector<float> gradient_like(std::size_t n, std::uint64_t seed = 1, float scale = 1e-2f)
{
  const terse::random_stream s{.seed = seed, .step = 0, .stream = 99};
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto b = s.block(i);
    float sum = 0;
    for (std::uint32_t w : b.word) {
      sum += terse::uniform_float(w);
    }
    v[i] = (sum - 2.0f) * 1.7320508f * scale;  // variance 4/12 -> 1
  }
  return v;
}

/// Finite edge inputs every codec must handle by one documented policy.
struct named_input {
  std::string name;
  std::vector<float> values;
};

inline std::vector<named_input> edge_inputs()
{
  const float big = std::numeric_limits<float>::max();
  const float tiny = std::numeric_limits<float>::denorm_min();
  std::vector<named_input> inputs{
      {"empty", {}},
      {"one value", {0.75f}},
      {"one negative value", {-3.0f}},
      {"all zeros", std::vector<float>(1000, 0.0f)},
      {"signed zeros", {0.0f, -0.0f, 0.0f, -0.0f}},
      {"denormals", {tiny, -tiny, 3 * tiny, 0.0f, -7 * tiny, 1e-40f, -1e-39f}},
      {"plus and minus FLT_MAX", {big, -big, 0.0f, big, -big, 1.0f}},
      {"all FLT_MAX", std::vector<float>(33, big)},
      {"constant", std::vector<float>(517, 0.125f)},
      {"one spike",
       [] {
         std::vector<float> v(4099, 0.0f);
         v[1234] = 5.0f;
         return v;
       }()},
      {"gradient-like", gradient_like(10007)},
  };
  return inputs;
}

template <class Codec>
std::vector<std::byte> encode(Codec& codec, const terse::codec_context& ctx, const std::vector<float>& values)
{
  std::vector<std::byte> payload(codec.max_encoded_bytes(values.size()));
  const std::size_t used =
      codec.encode(ctx, terse::host_span<const float>(values), terse::host_span<std::byte>(payload));
  REQUIRE(used <= payload.size());
  payload.resize(used);
  return payload;
}

template <class Codec>
std::vector<float> decode(Codec& codec, const terse::codec_context& ctx, const std::vector<std::byte>& payload,
                          std::size_t n)
{
  std::vector<float> out(n, 0.0f);
  codec.decode_add(ctx, terse::host_span<const std::byte>(payload), terse::host_span<float>(out));
  return out;
}

/// Encode then decode.
template <class Codec>
std::vector<float> round_trip(Codec& codec, const terse::codec_context& ctx, const std::vector<float>& values)
{
  return decode(codec, ctx, encode(codec, ctx, values), values.size());
}

inline terse::errc error_code_of(auto&& action)
{
  try {
    action();
  } catch (const terse::error& e) {
    return e.code();
  }
  FAIL("expected a terse::error");
  return terse::errc::internal;
}

/// The malformed-payload battery: every mutation must raise
/// errc::malformed_payload and leave the accumulator untouched.
template <class Codec>
void check_rejects_malformed(Codec& codec, const terse::codec_context& ctx, const std::vector<std::byte>& valid,
                             std::size_t n)
{
  const std::vector<float> sentinel(n, 42.0f);
  const auto rejects = [&](const std::vector<std::byte>& bad, std::size_t expect_n, const char* what) {
    CAPTURE(what);
    std::vector<float> acc(expect_n, 42.0f);
    const terse::errc code = error_code_of(
        [&] { codec.decode_add(ctx, terse::host_span<const std::byte>(bad), terse::host_span<float>(acc)); });
    CHECK(code == terse::errc::malformed_payload);
    if (expect_n == n) {
      CHECK(acc == sentinel);  // validated before writing anything
    }
  };
  // every truncation
  for (std::size_t len = 0; len < valid.size(); len += (valid.size() > 512 ? valid.size() / 97 : 1)) {
    rejects(std::vector<std::byte>(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(len)), n, "truncated");
  }
  // one byte too many
  auto longer = valid;
  longer.push_back(std::byte{0});
  rejects(longer, n, "one extra byte");
  // header fields
  auto bad_magic = valid;
  bad_magic[0] ^= std::byte{0xff};
  rejects(bad_magic, n, "bad magic");
  auto bad_version = valid;
  bad_version[2] = std::byte{99};
  rejects(bad_version, n, "bad version");
  auto bad_codec = valid;
  bad_codec[3] = static_cast<std::byte>(static_cast<unsigned>(bad_codec[3]) ^ 0x7fu);
  rejects(bad_codec, n, "another codec");
  auto huge_count = valid;
  const std::uint64_t count = std::numeric_limits<std::uint64_t>::max() / 3;
  std::memcpy(huge_count.data() + 8, &count, 8);
  rejects(huge_count, n, "count from the wire disagrees and overflows lengths");
  // the receiver expects another element count
  rejects(valid, n + 1, "receiver expects one more element");
}

/// Non-finite input is refused with errc::non_finite (the documented
/// policy), wherever it appears.
template <class Codec>
void check_rejects_non_finite(Codec& codec, const terse::codec_context& ctx)
{
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  for (float special : specials) {
    for (std::size_t at : {std::size_t{0}, std::size_t{511}, std::size_t{4095}}) {
      std::vector<float> values = gradient_like(4096);
      values[at] = special;
      std::vector<std::byte> payload(codec.max_encoded_bytes(values.size()));
      CAPTURE(at);
      CHECK(error_code_of([&] {
              codec.encode(ctx, terse::host_span<const float>(values), terse::host_span<std::byte>(payload));
            }) == terse::errc::non_finite);
    }
  }
}

}  // namespace codec_test

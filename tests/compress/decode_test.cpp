// compress::decode overwrites its output: a codec's own decode keeps every
// bit (−0 included), which zero-then-decode_add cannot; codecs without one
// fall back to zero-then-decode_add.
#include <terse/compress/cast.hpp>
#include <terse/compress/decode.hpp>
#include <terse/compress/identity.hpp>
#include <terse/compress/topk.hpp>
#include <terse/core/concepts.hpp>

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

const std::vector<float> values{-0.0f, 1.5f, 0.0f, -2.0f, -0.0f};

template <class Codec>
std::vector<float> decoded(Codec& codec, const std::vector<float>& in, float fill)
{
  std::vector<std::byte> payload(codec.max_encoded_bytes(in.size()));
  payload.resize(codec.encode({}, terse::host_span<const float>(in), terse::host_span<std::byte>(payload)));
  std::vector<float> out(in.size(), fill);
  terse::compress::decode(codec, {}, payload, terse::host_span<float>(out));
  return out;
}

std::vector<std::uint32_t> bits(const std::vector<float>& v)
{
  std::vector<std::uint32_t> b;
  for (float x : v) {
    b.push_back(std::bit_cast<std::uint32_t>(x));
  }
  return b;
}

}  // namespace

static_assert(terse::concepts::compressor_decodes_into<terse::compress::identity>);
static_assert(terse::concepts::compressor_decodes_into<terse::compress::cast_fp16>);
static_assert(terse::concepts::compressor_decodes_into<terse::compress::cast_bf16>);

TEST_CASE_TEMPLATE("decode of an identity or cast payload holding -0.0 gives -0.0 bits", Codec,
                   terse::compress::identity, terse::compress::cast_fp16, terse::compress::cast_bf16)
{
  Codec codec{};
  const auto out = decoded(codec, values, 9.0f);  // whatever the buffer held is overwritten
  CHECK(bits(out) == bits(values));
  CHECK(std::signbit(out[0]));
  CHECK(std::signbit(out[4]));
  CHECK_FALSE(std::signbit(out[2]));

  // What zero-then-decode_add gives instead: −0 + +0 = +0.
  std::vector<std::byte> payload(codec.max_encoded_bytes(values.size()));
  payload.resize(codec.encode({}, terse::host_span<const float>(values), terse::host_span<std::byte>(payload)));
  std::vector<float> acc(values.size(), 0.0f);
  codec.decode_add({}, payload, terse::host_span<float>(acc));
  CHECK_FALSE(std::signbit(acc[0]));

  // A malformed payload raises and leaves the output alone.
  payload.pop_back();
  std::vector<float> untouched(values.size(), 9.0f);
  CHECK_THROWS_AS(terse::compress::decode(codec, {}, payload, terse::host_span<float>(untouched)), terse::error);
  CHECK(untouched == std::vector<float>(values.size(), 9.0f));
}

TEST_CASE("decode falls back to zero-then-decode_add for a codec without its own decode")
{
  static_assert(!terse::concepts::compressor_decodes_into<terse::compress::topk>);
  terse::compress::topk codec{.density = 0.4f};
  const std::vector<float> in{0.1f, -5.0f, 0.2f, 4.0f, -0.3f};
  const auto out = decoded(codec, in, 9.0f);
  CHECK(out == std::vector<float>{0.0f, -5.0f, 0.0f, 4.0f, 0.0f});  // the two largest kept, the rest zeroed
}

// Device cast, uniform, qsgd and adaptive against their host codecs: the
// same bytes for the same input and context (both kernel paths: buckets
// that are multiples of 8 and ones that are not; offsets; edge inputs),
// the same decoded sums, the same fused residuals; malformed payloads are
// rejected with the accumulator untouched; non-finite input is refused.
#include <terse/compress/adaptive.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/cuda/adaptive.cuh>
#include <terse/cuda/cast.cuh>
#include <terse/cuda/qsgd.cuh>
#include <terse/cuda/uniform.cuh>

#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "device_vector.hpp"

namespace {

using terse_test::device_vector;

std::vector<float> gradient_like(std::size_t n, std::uint64_t seed, float scale = 1e-2f)
{
  const terse::random_stream s{.seed = seed, .step = 0, .stream = 99};
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto b = s.block(i);
    float sum = 0;
    for (std::uint32_t w : b.word) {
      sum += terse::uniform_float(w);
    }
    v[i] = (sum - 2.0f) * 1.7320508f * scale;
  }
  return v;
}

struct named {
  std::string name;
  std::vector<float> values;
};

std::vector<named> inputs()
{
  const float big = FLT_MAX;
  const float tiny = std::numeric_limits<float>::denorm_min();
  std::vector<named> all{{"empty", {}},
                         {"one value", {0.75f}},
                         {"all zeros", std::vector<float>(1000, 0.0f)},
                         {"signed zeros", {0.0f, -0.0f, 0.0f, -0.0f}},
                         {"denormals", {tiny, -tiny, 3 * tiny, 0.0f, -7 * tiny, 1e-40f, -1e-39f}},
                         {"plus and minus FLT_MAX", {big, -big, 0.0f, big, -big, 1.0f}},
                         {"constant", std::vector<float>(517, 0.125f)},
                         {"gradient-like", gradient_like(10007, 1)},
                         {"large gradient-like", gradient_like(1 << 18, 2, 3.0f)}};
  std::vector<float> spike(4099, 0.0f);
  spike[1234] = 5.0f;
  all.push_back({"one spike", spike});
  return all;
}

terse::codec_context context(std::uint64_t step = 5)
{
  return terse::codec_context{.seed = 0xfeed, .step = step, .bucket = 2, .rank = 1, .world = 4};
}

template <class T>
std::vector<T> download(const device_vector<T>& v)
{
  return v.download();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b)
{
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), 4 * a.size()) == 0);
}

/// Device encode == host encode; device decode_add == host decode_add;
/// device encode_residual == host encode_residual (bytes and e_new).
template <class Codec>
void check_against_host(const Codec& codec, const terse::codec_context& ctx, const std::vector<float>& values)
{
  terse::device_workspace workspace;
  terse::cuda_stream stream;
  const std::size_t n = values.size();
  const std::size_t capacity = codec.max_encoded_bytes(n);

  std::vector<std::byte> host(capacity);
  host.resize(codec.encode(ctx, values, host));

  device_vector<float> in(values);
  device_vector<std::byte> out(capacity);
  const std::size_t used =
      terse::cuda::encode(codec, ctx, terse::device_span<const float>(in.span()), out.span(), stream.get(), workspace);
  REQUIRE(used == host.size());
  auto device = download(out);
  device.resize(used);
  CHECK(device == host);

  // decode into a nonzero accumulator
  std::vector<float> acc_host(n, 0.25f);
  codec.decode_add(ctx, host, acc_host);
  device_vector<float> acc(std::vector<float>(n, 0.25f));
  device_vector<std::byte> payload(host);
  terse::cuda::decode_add(codec, ctx, terse::device_span<const std::byte>(payload.span()), acc.span(), stream.get(),
                          workspace);
  CHECK(same_bits(download(acc), acc_host));

  // fused residual
  const auto e_values = gradient_like(n, 77, 1e-3f);
  std::vector<float> e_new_host(n);
  std::vector<std::byte> fused_host(capacity);
  fused_host.resize(codec.encode_residual(ctx, values, e_values, e_new_host, fused_host));
  device_vector<float> e_old(e_values), e_new(n);
  const std::size_t fused_used = terse::cuda::encode_residual(codec, ctx, terse::device_span<const float>(in.span()),
                                                              terse::device_span<const float>(e_old.span()),
                                                              e_new.span(), out.span(), stream.get(), workspace);
  REQUIRE(fused_used == fused_host.size());
  auto fused_device = download(out);
  fused_device.resize(fused_used);
  CHECK(fused_device == fused_host);
  CHECK(same_bits(download(e_new), e_new_host));
}

/// Malformed payloads raise malformed_payload on the device and leave acc alone.
template <class Codec>
void check_rejects(const Codec& codec, const terse::codec_context& ctx, const std::vector<std::byte>& bad,
                   std::size_t n, const char* what)
{
  CAPTURE(what);
  terse::device_workspace workspace;
  terse::cuda_stream stream;
  device_vector<std::byte> payload(bad.empty() ? std::vector<std::byte>(1) : bad);
  device_vector<float> acc(std::vector<float>(n, 42.0f));
  terse::errc code = terse::errc::internal;
  try {
    terse::cuda::decode_add(codec, ctx, terse::device_span<const std::byte>(payload.span().data(), bad.size()),
                            acc.span(), stream.get(), workspace);
  } catch (const terse::error& e) {
    code = e.code();
  }
  CHECK(code == terse::errc::malformed_payload);
  CHECK(download(acc) == std::vector<float>(n, 42.0f));
}

template <class Codec>
void check_malformed(const Codec& codec, const terse::codec_context& ctx, std::size_t n, std::size_t scale_at,
                     std::uint32_t bad_scale)
{
  const auto values = gradient_like(n, 3);
  std::vector<std::byte> valid(codec.max_encoded_bytes(n));
  valid.resize(codec.encode(ctx, values, valid));
  check_rejects(codec, ctx, std::vector<std::byte>(valid.begin(), valid.begin() + 10), n, "truncated header");
  check_rejects(codec, ctx, std::vector<std::byte>(valid.begin(), valid.end() - 1), n, "one byte short");
  auto longer = valid;
  longer.push_back(std::byte{0});
  check_rejects(codec, ctx, longer, n, "one byte long");
  auto magic = valid;
  magic[0] ^= std::byte{0xff};
  check_rejects(codec, ctx, magic, n, "bad magic");
  auto count = valid;
  count[8] ^= std::byte{1};
  check_rejects(codec, ctx, count, n, "another count");
  auto param = valid;
  param[4] ^= std::byte{0x40};
  check_rejects(codec, ctx, param, n, "another parameter");
  auto scale = valid;
  std::memcpy(scale.data() + scale_at, &bad_scale, std::min<std::size_t>(4, scale.size() - scale_at));
  check_rejects(codec, ctx, scale, n, "a bad scale or value");
}

template <class Codec>
void check_non_finite(const Codec& codec, const terse::codec_context& ctx)
{
  terse::device_workspace workspace;
  terse::cuda_stream stream;
  for (float special : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto values = gradient_like(4096, 4);
    values[1000] = special;
    device_vector<float> in(values);
    device_vector<std::byte> out(codec.max_encoded_bytes(values.size()));
    terse::errc code = terse::errc::internal;
    try {
      terse::cuda::encode(codec, ctx, terse::device_span<const float>(in.span()), out.span(), stream.get(), workspace);
    } catch (const terse::error& e) {
      code = e.code();
    }
    CHECK(code == terse::errc::non_finite);
  }
  // the workspace is usable again afterwards
  check_against_host(codec, ctx, gradient_like(1000, 5));
}

}  // namespace

TEST_CASE_TEMPLATE("device uniform: bytes, decode and residual equal the host's", Codec, terse::compress::uniform<8>,
                   terse::compress::uniform<4>, terse::compress::uniform<2>)
{
  for (std::uint32_t bucket : {512u, 64u, 37u, 1u}) {
    for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{1000}, std::uint64_t{13}}) {
      auto ctx = context();
      ctx.offset = offset;
      for (const auto& input : inputs()) {
        CAPTURE(bucket);
        CAPTURE(offset);
        CAPTURE(input.name);
        if (bucket == 1 && input.values.size() > 20000) {
          continue;
        }
        check_against_host(Codec{.bucket = bucket}, ctx, input.values);
      }
    }
  }
}

TEST_CASE_TEMPLATE("device qsgd: bytes, decode and residual equal the host's", Codec, terse::compress::qsgd<1>,
                   terse::compress::qsgd<3>, terse::compress::qsgd<7>, terse::compress::qsgd<15>,
                   terse::compress::qsgd<127>)
{
  for (std::uint32_t bucket : {512u, 64u, 50u, 3u}) {
    for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{77}}) {
      auto ctx = context();
      ctx.offset = offset;
      for (const auto& input : inputs()) {
        CAPTURE(bucket);
        CAPTURE(input.name);
        if (bucket < 8 && input.values.size() > 20000) {
          continue;
        }
        check_against_host(Codec{.bucket = bucket}, ctx, input.values);
      }
    }
  }
}

TEST_CASE("device adaptive: each stage's bytes, decode and residual equal the host's")
{
  const terse::compress::adaptive codec{.bucket = 512, .horizon = 100};
  for (std::uint64_t step : {0u, 40u, 90u}) {
    for (const auto& input : inputs()) {
      CAPTURE(step);
      CAPTURE(input.name);
      check_against_host(codec, context(step), input.values);
    }
  }
  // a payload from another stage is rejected
  const auto values = gradient_like(1000, 8);
  std::vector<std::byte> early(codec.max_encoded_bytes(1000));
  early.resize(codec.encode(context(0), values, early));
  check_rejects(codec, context(50), early, 1000, "another stage's width");
}

TEST_CASE_TEMPLATE("device cast: bytes, decode, residual and the summable path equal the host's", Storage, terse::fp16,
                   terse::bf16)
{
  const terse::compress::cast<Storage> codec;
  for (const auto& input : inputs()) {
    CAPTURE(input.name);
    check_against_host(codec, context(), input.values);
    terse::device_workspace workspace;
    terse::cuda_stream stream;
    const std::size_t n = input.values.size();
    std::vector<Storage> wire_host(n);
    codec.encode_values({}, input.values, wire_host);
    device_vector<float> in(input.values);
    device_vector<Storage> wire(n);
    terse::cuda::encode_values(codec, {}, terse::device_span<const float>(in.span()), wire.span(), stream.get(),
                               workspace);
    const auto wire_device = download(wire);
    CHECK(std::memcmp(wire_device.data(), wire_host.data(), 2 * n) == 0);
    std::vector<float> out_host(n);
    codec.decode_values({}, wire_host, out_host);
    device_vector<float> out(n);
    terse::cuda::decode_values(codec, {}, terse::device_span<const Storage>(wire.span()), out.span(), stream.get(),
                               workspace);
    stream.synchronize();
    CHECK(same_bits(download(out), out_host));
  }
}

TEST_CASE("device quantizers: malformed payloads are rejected with the accumulator untouched")
{
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::uint32_t nan_bits;
  std::memcpy(&nan_bits, &nan, 4);
  for (std::size_t n : {1u, 1000u}) {
    CAPTURE(n);
    check_malformed(terse::compress::uniform<8>{.bucket = 64}, context(), n, 24, nan_bits);
    check_malformed(terse::compress::uniform<4>{.bucket = 37}, context(), n, 28, 0xff800000u);  // max = -Inf < min
    check_malformed(terse::compress::qsgd<7>{.bucket = 64}, context(), n, 24, 0xbf800000u);     // norm -1
    check_malformed(terse::compress::qsgd<3>{.bucket = 50}, context(), n, 24, nan_bits);
    check_malformed(terse::compress::adaptive{.horizon = 100}, context(50), n, 24, nan_bits);
    check_malformed(terse::compress::cast_fp16{}, context(), n, 24, 0x7c007c00u);  // Inf halves
    check_malformed(terse::compress::cast_bf16{}, context(), n, 24, 0x7fc07fc0u);  // NaN halves
  }
  // padding bits after the last field
  const terse::compress::uniform<2> codec{.bucket = 64};
  const auto values = gradient_like(1001, 3);
  std::vector<std::byte> valid(codec.max_encoded_bytes(1001));
  valid.resize(codec.encode(context(), values, valid));
  valid.back() |= std::byte{0x80};
  check_rejects(codec, context(), valid, 1001, "nonzero padding");
}

TEST_CASE("device quantizers: NaN or Inf input is refused with errc::non_finite")
{
  check_non_finite(terse::compress::uniform<8>{}, context());
  check_non_finite(terse::compress::uniform<2>{.bucket = 37}, context());
  check_non_finite(terse::compress::qsgd<15>{}, context());
  check_non_finite(terse::compress::qsgd<1>{.bucket = 3}, context());
  check_non_finite(terse::compress::adaptive{}, context());
  check_non_finite(terse::compress::cast_fp16{}, context());
  check_non_finite(terse::compress::cast_bf16{}, context());
}

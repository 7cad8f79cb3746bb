// Device sign, terngrad and randomk: the payload bytes equal the host's for
// the same input and context, device decoding adds what host decoding adds
// (bit for bit), the fused residual matches the host's, malformed payloads
// are refused with acc untouched, and non-finite input is errc::non_finite.
#include <terse/compress/randomk.hpp>
#include <terse/compress/sign.hpp>
#include <terse/compress/terngrad.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/cuda/randomk.cuh>
#include <terse/cuda/sign.cuh>
#include <terse/cuda/terngrad.cuh>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../compress/codec_test_support.hpp"
#include "device_vector.hpp"

namespace {

using terse_test::device_vector;

struct device_fixture {
  terse::cuda_stream stream;
  terse::device_workspace workspace;
};

terse::codec_context context(std::uint64_t step = 3, int rank = 1, std::uint64_t offset = 0)
{
  terse::codec_context ctx;
  ctx.seed = 0x5eed;
  ctx.step = step;
  ctx.bucket = 5;
  ctx.rank = rank;
  ctx.world = 4;
  ctx.offset = offset;
  return ctx;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b)
{
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

std::vector<codec_test::named_input> inputs()
{
  auto all = codec_test::edge_inputs();
  all.push_back({"large gradient", codec_test::gradient_like(300'007, 4)});
  auto zeros = codec_test::gradient_like(5000, 8);
  for (std::size_t i = 0; i < zeros.size(); i += 7) {
    zeros[i] = (i % 2 == 0) ? 0.0f : -0.0f;
  }
  all.push_back({"signed zeros among values", zeros});
  return all;
}

// Device encode == host encode; device decode_add == host decode_add.
template <class Codec>
void check_matches_host(Codec& codec, const terse::codec_context& ctx, const std::vector<float>& values,
                        device_fixture& f)
{
  const std::size_t n = values.size();
  const auto host_payload = codec_test::encode(codec, ctx, values);
  device_vector<float> in(values);
  device_vector<std::byte> out(codec.max_encoded_bytes(n));
  const std::size_t used = terse::cuda::encode(codec, ctx, terse::device_span<const float>(in.span()), out.span(),
                                               f.stream.get(), f.workspace);
  CHECK(used == host_payload.size());
  CHECK(out.download() == host_payload);

  std::vector<float> start(n);
  for (std::size_t i = 0; i < n; ++i) {
    start[i] = 0.5f - static_cast<float>(i % 3);
  }
  std::vector<float> host_acc = start;
  codec.decode_add(ctx, terse::host_span<const std::byte>(host_payload), terse::host_span<float>(host_acc));
  device_vector<float> acc(start);
  device_vector<std::byte> payload(host_payload);
  terse::cuda::decode_add(codec, ctx, terse::device_span<const std::byte>(payload.span()), acc.span(), f.stream.get(),
                          f.workspace);
  CHECK(same_bits(acc.download(), host_acc));
}

// The device refuses `bad` with malformed_payload and leaves acc as it was.
template <class Codec>
void check_device_rejects(Codec& codec, const terse::codec_context& ctx, const std::vector<std::byte>& bad,
                          std::size_t n, device_fixture& f)
{
  const std::vector<float> sentinel(n, 42.0f);
  device_vector<float> acc(sentinel);
  device_vector<std::byte> payload(bad);
  CHECK(codec_test::error_code_of([&] {
          terse::cuda::decode_add(codec, ctx, terse::device_span<const std::byte>(payload.span()), acc.span(),
                                  f.stream.get(), f.workspace);
        }) == terse::errc::malformed_payload);
  CHECK(acc.download() == sentinel);
}

// Header, length and codec mutations every decoder must refuse.
template <class Codec>
void check_device_rejects_battery(Codec& codec, const terse::codec_context& ctx, const std::vector<std::byte>& valid,
                                  std::size_t n, device_fixture& f)
{
  for (std::size_t len : {std::size_t{0}, std::size_t{10}, valid.size() - 1}) {
    if (len < valid.size()) {
      check_device_rejects(codec, ctx, std::vector<std::byte>(valid.begin(), valid.begin() + len), n, f);
    }
  }
  auto longer = valid;
  longer.push_back(std::byte{0});
  check_device_rejects(codec, ctx, longer, n, f);
  auto bad_magic = valid;
  bad_magic[0] ^= std::byte{0xff};
  check_device_rejects(codec, ctx, bad_magic, n, f);
  auto bad_codec = valid;
  bad_codec[3] ^= std::byte{0x7f};
  check_device_rejects(codec, ctx, bad_codec, n, f);
  auto bad_count = valid;
  bad_count[8] ^= std::byte{0x01};
  check_device_rejects(codec, ctx, bad_count, n, f);
}

template <class Codec>
void check_non_finite(Codec& codec, device_fixture& f)
{
  for (float special : {NAN, INFINITY, -INFINITY}) {
    auto values = codec_test::gradient_like(4096);
    values[2049] = special;
    device_vector<float> in(values);
    device_vector<std::byte> out(codec.max_encoded_bytes(values.size()));
    CHECK(codec_test::error_code_of([&] {
            terse::cuda::encode(codec, context(), terse::device_span<const float>(in.span()), out.span(),
                                f.stream.get(), f.workspace);
          }) == terse::errc::non_finite);
  }
  // the workspace is clean again: a good encode goes through
  const auto values = codec_test::gradient_like(100);
  check_matches_host(codec, context(), values, f);
}

template <class Codec>
void check_residual_matches_host(Codec& codec, const terse::codec_context& ctx, device_fixture& f)
{
  for (std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{70'001}}) {
    CAPTURE(n);
    const auto g = codec_test::gradient_like(n, 1);
    const auto e_old = codec_test::gradient_like(n, 2, 3e-3f);
    std::vector<float> host_e(n);
    std::vector<std::byte> host_out(codec.max_encoded_bytes(n));
    codec.encode_residual(ctx, terse::host_span<const float>(g), terse::host_span<const float>(e_old),
                          terse::host_span<float>(host_e), terse::host_span<std::byte>(host_out));
    device_vector<float> dg(g), de_old(e_old), de_new(n);
    device_vector<std::byte> out(host_out.size());
    terse::cuda::encode_residual(codec, ctx, terse::device_span<const float>(dg.span()),
                                 terse::device_span<const float>(de_old.span()), de_new.span(), out.span(),
                                 f.stream.get(), f.workspace);
    CHECK(out.download() == host_out);
    CHECK(same_bits(de_new.download(), host_e));
  }
}

}  // namespace

TEST_CASE("sign on the device writes the host's bytes and decodes as the host does")
{
  device_fixture f;
  for (std::size_t bucket : {std::size_t{1}, std::size_t{13}, std::size_t{512}}) {
    const terse::compress::sign codec{.bucket = bucket};
    for (const auto& input : inputs()) {
      CAPTURE(bucket);
      CAPTURE(input.name);
      check_matches_host(codec, context(), input.values, f);
    }
  }
}

TEST_CASE("sign on the device refuses malformed payloads and non-finite input")
{
  device_fixture f;
  const terse::compress::sign codec{.bucket = 64};
  const std::size_t n = 1003;
  const auto valid = codec_test::encode(codec, context(), codec_test::gradient_like(n));
  check_device_rejects_battery(codec, context(), valid, n, f);
  for (float bad : {-1.0f, INFINITY, NAN}) {
    auto payload = valid;
    std::memcpy(payload.data() + 24 + 4 * 7, &bad, 4);
    check_device_rejects(codec, context(), payload, n, f);
  }
  auto padding = valid;
  padding.back() |= std::byte{0x80};
  check_device_rejects(codec, context(), padding, n, f);
  check_non_finite(codec, f);
}

TEST_CASE("sign encode_residual on the device matches the host bit for bit")
{
  device_fixture f;
  const terse::compress::sign codec{.bucket = 100};
  check_residual_matches_host(codec, context(), f);
}

TEST_CASE("terngrad on the device draws, writes and decodes as the host does")
{
  device_fixture f;
  for (std::size_t bucket : {std::size_t{1}, std::size_t{13}, std::size_t{512}}) {
    const terse::compress::terngrad codec{.bucket = bucket};
    for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{77}, std::uint64_t{1} << 34}) {
      for (const auto& input : inputs()) {
        CAPTURE(bucket);
        CAPTURE(offset);
        CAPTURE(input.name);
        check_matches_host(codec, context(4, 2, offset), input.values, f);
      }
    }
  }
}

TEST_CASE("terngrad on the device refuses malformed payloads and non-finite input")
{
  device_fixture f;
  const terse::compress::terngrad codec{.bucket = 64};
  const std::size_t n = 1001;
  const auto valid = codec_test::encode(codec, context(), codec_test::gradient_like(n));
  check_device_rejects_battery(codec, context(), valid, n, f);
  for (float bad : {-1.0f, INFINITY, NAN}) {
    auto payload = valid;
    std::memcpy(payload.data() + 24 + 4 * 3, &bad, 4);
    check_device_rejects(codec, context(), payload, n, f);
  }
  auto code3 = valid;
  code3[24 + 4 * 16 + 100] |= std::byte{0x0c};
  check_device_rejects(codec, context(), code3, n, f);
  auto padding = valid;
  padding.back() |= std::byte{0x40};
  check_device_rejects(codec, context(), padding, n, f);
  check_non_finite(codec, f);
}

TEST_CASE("terngrad encode_residual on the device matches the host bit for bit")
{
  device_fixture f;
  const terse::compress::terngrad codec{.bucket = 100};
  check_residual_matches_host(codec, context(6, 1, 40), f);
}

TEST_CASE("randomk on the device uses the host's indices: same bytes, values and decodes")
{
  device_fixture f;
  for (double density : {0.001, 0.05, 1.0}) {
    terse::compress::randomk codec{.density = density};
    for (const auto& input : inputs()) {
      CAPTURE(density);
      CAPTURE(input.name);
      check_matches_host(codec, context(), input.values, f);
      // typed values (the summable path)
      const std::size_t n = input.values.size();
      const std::size_t k = codec.wire_count(n);
      std::vector<float> host_wire(k);
      codec.encode_values(context(), terse::host_span<const float>(input.values), terse::host_span<float>(host_wire));
      device_vector<float> in(input.values), wire(k), out(n);
      terse::cuda::encode_values(codec, context(), terse::device_span<const float>(in.span()), wire.span(),
                                 f.stream.get(), f.workspace);
      CHECK(same_bits(wire.download(), host_wire));
      std::vector<float> host_out(n);
      codec.decode_values(context(), terse::host_span<const float>(host_wire), terse::host_span<float>(host_out));
      terse::cuda::decode_values(codec, context(), terse::device_span<const float>(wire.span()), out.span(),
                                 f.stream.get(), f.workspace);
      CHECK(same_bits(out.download(), host_out));
    }
  }
}

TEST_CASE("randomk on the device refuses malformed payloads and non-finite input")
{
  device_fixture f;
  terse::compress::randomk codec{.density = 0.05};
  const std::size_t n = 2000;
  const auto valid = codec_test::encode(codec, context(), codec_test::gradient_like(n));
  check_device_rejects_battery(codec, context(), valid, n, f);
  for (float bad : {INFINITY, NAN}) {
    auto payload = valid;
    std::memcpy(payload.data() + 24 + 4 * 20, &bad, 4);
    check_device_rejects(codec, context(), payload, n, f);
  }
  auto other_k = valid;
  other_k[16] ^= std::byte{0x01};
  check_device_rejects(codec, context(), other_k, n, f);
  check_non_finite(codec, f);
}

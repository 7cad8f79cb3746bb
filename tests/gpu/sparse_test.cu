// The sparsifiers on the device against the host codecs: identical payload
// bytes for topk, threshold and dgc (ties, edge inputs, sparse and large
// inputs, every refinement path of dgc and its threshold updates), the same
// decode, the malformed battery on device payloads, non-finite input.
#include <terse/compress/dgc.hpp>
#include <terse/compress/threshold.hpp>
#include <terse/compress/topk.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/cuda_workspace.hpp>
#include <terse/cuda/dgc.cuh>
#include <terse/cuda/threshold.cuh>
#include <terse/cuda/topk.cuh>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../compress/codec_test_support.hpp"
#include "../compress/sparse_test_support.hpp"
#include "device_vector.hpp"

using terse_test::device_vector;

namespace sparse_device_test {

/// The inputs every codec is checked on: edge inputs, ties, sparse, large.
std::vector<codec_test::named_input> inputs()
{
  auto all = codec_test::edge_inputs();
  all.push_back({"quantised ties", sparse_test::quantised(50000, 1, 3)});
  all.push_back({"many levels", sparse_test::quantised(70001, 2, 1000, 1e-3f)});
  all.push_back({"large gradient", codec_test::gradient_like(std::size_t{1} << 21, 3)});
  all.push_back({"large ties", sparse_test::quantised(std::size_t{1} << 20, 4, 2)});
  std::vector<float> sparse(300000, 0.0f);
  for (std::size_t i = 7; i < sparse.size(); i += 501) {
    sparse[i] = static_cast<float>(i % 13) - 6.0f;
  }
  sparse[1] = -0.0f;
  all.push_back({"sparser than k", sparse});
  std::vector<float> denormals(100000, 0.0f);
  for (std::size_t i = 0; i < denormals.size(); i += 3) {
    denormals[i] = std::numeric_limits<float>::denorm_min() * static_cast<float>(i % 50);
  }
  all.push_back({"denormals and zeros", denormals});
  return all;
}

struct device_context {
  terse::cuda_stream stream;
  terse::device_workspace workspace;
};

template <class Codec>
std::vector<std::byte> device_encode(Codec& codec, const terse::codec_context& ctx, const std::vector<float>& values,
                                     device_context& dev)
{
  device_vector<float> in(values);
  device_vector<std::byte> out(codec.max_encoded_bytes(values.size()));
  const std::size_t used = terse::cuda::encode(codec, ctx, in.span(), out.span(), dev.stream.get(), dev.workspace);
  auto bytes = out.download();
  REQUIRE(used <= bytes.size());
  bytes.resize(used);
  return bytes;
}

template <class Codec>
std::vector<float> device_decode(Codec& codec, const std::vector<std::byte>& payload, std::vector<float> acc,
                                 device_context& dev)
{
  device_vector<std::byte> bytes(payload);
  device_vector<float> out(acc);
  terse::cuda::decode_add(codec, {}, terse::device_span<const std::byte>(bytes.span().data(), payload.size()),
                          out.span(), dev.stream.get(), dev.workspace);
  return out.download();
}

/// Device and host bytes agree, and the device decode equals the host's.
template <class Codec>
void check_same_as_host(Codec host, Codec device, const terse::codec_context& ctx, const std::vector<float>& v,
                        device_context& dev)
{
  const auto expected = codec_test::encode(host, ctx, v);
  const auto got = device_encode(device, ctx, v, dev);
  CHECK(got == expected);
  const std::vector<float> start(v.size(), 0.5f);
  std::vector<float> host_acc = start;
  host.decode_add(ctx, terse::host_span<const std::byte>(expected), terse::host_span<float>(host_acc));
  CHECK(device_decode(device, expected, start, dev) == host_acc);
}

template <class Codec>
void check_device_rejects(Codec& codec, const std::vector<std::byte>& bad, std::size_t n, device_context& dev,
                          const char* what)
{
  CAPTURE(what);
  const std::vector<float> start(n, 42.0f);
  device_vector<std::byte> bytes(bad);
  device_vector<float> acc(start);
  CHECK(codec_test::error_code_of([&] {
          terse::cuda::decode_add(codec, {}, terse::device_span<const std::byte>(bytes.span().data(), bad.size()),
                                  acc.span(), dev.stream.get(), dev.workspace);
        }) == terse::errc::malformed_payload);
  CHECK(acc.download() == start);
}

/// The malformed battery on device memory (truncations sampled).
template <class Codec>
void check_device_malformed(Codec& codec, const std::vector<std::byte>& valid, std::size_t n, device_context& dev)
{
  for (std::size_t len : {std::size_t{0}, std::size_t{10}, std::size_t{24}, valid.size() - 8, valid.size() - 1}) {
    check_device_rejects(codec, std::vector<std::byte>(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(len)),
                         n, dev, "truncated");
  }
  auto longer = valid;
  longer.push_back(std::byte{0});
  check_device_rejects(codec, longer, n, dev, "one extra byte");
  auto bad_magic = valid;
  bad_magic[0] ^= std::byte{0xff};
  check_device_rejects(codec, bad_magic, n, dev, "bad magic");
  const auto c = terse::wire::load<std::uint64_t>(valid.data() + 16);
  const std::size_t idx = terse::wire::header_bytes;
  const std::size_t val = idx + 4 * c;
  auto swapped = valid;
  const auto a = terse::wire::load<std::uint32_t>(valid.data() + idx);
  const auto b = terse::wire::load<std::uint32_t>(valid.data() + idx + 4);
  terse::wire::store<std::uint32_t>(swapped.data() + idx, b);
  terse::wire::store<std::uint32_t>(swapped.data() + idx + 4, a);
  check_device_rejects(codec, swapped, n, dev, "unsorted indices");
  auto duplicate = valid;
  terse::wire::store<std::uint32_t>(duplicate.data() + idx + 4, a);
  check_device_rejects(codec, duplicate, n, dev, "duplicate index");
  auto out_of_range = valid;
  terse::wire::store<std::uint32_t>(out_of_range.data() + idx + 4 * (c - 1), static_cast<std::uint32_t>(n));
  check_device_rejects(codec, out_of_range, n, dev, "index == n");
  for (float special : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto bad = valid;
    terse::wire::store<float>(bad.data() + val + 4 * (c / 2), special);
    check_device_rejects(codec, bad, n, dev, "non-finite value");
  }
  auto bad_param = valid;
  terse::wire::store<float>(bad_param.data() + 4, -1.0f);
  check_device_rejects(codec, bad_param, n, dev, "invalid parameter");
  // A payload at an odd device address decodes like an aligned one.
  std::vector<std::byte> shifted(valid.size() + 1);
  std::copy(valid.begin(), valid.end(), shifted.begin() + 1);
  device_vector<std::byte> bytes(shifted);
  device_vector<float> acc(std::vector<float>(n, 0.0f));
  terse::cuda::decode_add(codec, {}, terse::device_span<const std::byte>(bytes.span().data() + 1, valid.size()),
                          acc.span(), dev.stream.get(), dev.workspace);
  CHECK(acc.download() == codec_test::decode(codec, {}, valid, n));
}

}  // namespace sparse_device_test

using namespace sparse_device_test;

TEST_CASE("device topk sends the host's bytes")
{
  device_context dev;
  for (const auto& input : inputs()) {
    for (float density : {1e-5f, 0.01f, 0.3f, 1.0f}) {
      CAPTURE(input.name);
      CAPTURE(density);
      terse::compress::topk codec{.density = density};
      check_same_as_host(codec, codec, {}, input.values, dev);
    }
  }
}

TEST_CASE("device threshold sends the host's bytes")
{
  device_context dev;
  for (const auto& input : inputs()) {
    for (float tau : {0.0f, 1e-30f, 0.01f, 1.0f, std::numeric_limits<float>::max()}) {
      CAPTURE(input.name);
      CAPTURE(tau);
      terse::compress::threshold codec{.tau = tau};
      check_same_as_host(codec, codec, {}, input.values, dev);
    }
  }
}

TEST_CASE("device dgc sends the host's bytes and keeps the host's thresholds")
{
  device_context dev;
  for (const auto& input : inputs()) {
    for (bool reuse : {false, true}) {
      CAPTURE(input.name);
      CAPTURE(reuse);
      terse::compress::dgc host{.density = 0.01f, .reuse_threshold = reuse};
      terse::compress::dgc device = host;
      for (std::uint64_t step = 0; step < 3; ++step) {
        const terse::codec_context ctx{.seed = 11, .step = step, .bucket = 4, .rank = 2, .world = 4};
        check_same_as_host(host, device, ctx, input.values, dev);
        // check_same_as_host copies the codecs; run the steps on these.
        (void)codec_test::encode(host, ctx, input.values);
        (void)device_encode(device, ctx, input.values, dev);
        CHECK(host.thresholds.find(4) == device.thresholds.find(4));
      }
    }
  }
}

TEST_CASE("device dgc refines like the host: too many, too few, zero tolerance")
{
  device_context dev;
  const std::size_t n = 200000;
  const auto v = codec_test::gradient_like(n, 9, 1.0f);
  for (std::uint32_t start : {1u, 0x7f000000u, 0xffffffffu}) {
    CAPTURE(start);
    terse::compress::dgc host{.density = 0.01f};
    host.thresholds.set(0, start);
    terse::compress::dgc device = host;
    CHECK(device_encode(device, {}, v, dev) == codec_test::encode(host, {}, v));
    CHECK(host.thresholds.find(0) == device.thresholds.find(0));
  }
  terse::compress::dgc exact{.density = 0.02f, .tolerance = 0.0f};
  check_same_as_host(exact, exact, {.step = 3}, sparse_test::quantised(n, 5, 4), dev);
}

TEST_CASE("device decoders reject malformed payloads and leave the accumulator alone")
{
  device_context dev;
  const auto v = codec_test::gradient_like(5000, 21);
  terse::compress::topk topk{.density = 0.02f};
  check_device_malformed(topk, codec_test::encode(topk, {}, v), v.size(), dev);
  terse::compress::threshold threshold{.tau = 0.01f};
  const auto t = codec_test::encode(threshold, {}, v);
  check_device_malformed(threshold, t, v.size(), dev);
  auto below = t;
  terse::wire::store<float>(below.data() + 24 + 4 * terse::wire::load<std::uint64_t>(t.data() + 16), 0.001f);
  check_device_rejects(threshold, below, v.size(), dev, "value below tau");
  terse::compress::dgc dgc{.density = 0.02f};
  check_device_malformed(dgc, codec_test::encode(dgc, {}, v), v.size(), dev);
  check_device_rejects(topk, codec_test::encode(topk, {}, v), v.size() + 1, dev, "receiver expects more values");
}

TEST_CASE("device encoders refuse NaN and Inf like the host")
{
  device_context dev;
  for (float special : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    for (std::size_t at : {std::size_t{0}, std::size_t{123456}}) {
      auto v = codec_test::gradient_like(200000, 8);
      v[at] = special;
      terse::compress::topk topk{.density = 0.01f};
      terse::compress::topk all{.density = 1.0f};
      terse::compress::threshold threshold{.tau = 0.5f};
      terse::compress::dgc dgc{.density = 0.01f};
      terse::compress::dgc reused{.density = 0.01f};
      reused.thresholds.set(0, 0x7f000000u);
      CHECK(codec_test::error_code_of([&] { device_encode(topk, {}, v, dev); }) == terse::errc::non_finite);
      CHECK(codec_test::error_code_of([&] { device_encode(all, {}, v, dev); }) == terse::errc::non_finite);
      CHECK(codec_test::error_code_of([&] { device_encode(threshold, {}, v, dev); }) == terse::errc::non_finite);
      CHECK(codec_test::error_code_of([&] { device_encode(dgc, {}, v, dev); }) == terse::errc::non_finite);
      CHECK(codec_test::error_code_of([&] { device_encode(reused, {}, v, dev); }) == terse::errc::non_finite);
    }
  }
}

// The element-wise rules are written once for host and device: fp16/bf16
// rounding and Philox draws computed by a kernel must equal, bit for bit,
// the same functions run on the host.
#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "device_vector.hpp"

namespace {

constexpr unsigned threads = 256;

unsigned blocks_for(std::size_t n)
{
  return static_cast<unsigned>((n + threads - 1) / threads);
}

__global__ void encode_16_bit(const std::uint32_t* float_bits, std::size_t n, std::uint16_t* fp16_out,
                              std::uint16_t* bf16_out)
{
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i < n) {
    const float value = __uint_as_float(float_bits[i]);
    fp16_out[i] = terse::detail::float_to_fp16_bits(value);
    bf16_out[i] = terse::bf16(value).bits;
  }
}

__global__ void decode_16_bit(std::size_t n, std::uint32_t* from_fp16, std::uint32_t* from_bf16)
{
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i < n) {
    const auto bits = static_cast<std::uint16_t>(i);
    from_fp16[i] = __float_as_uint(static_cast<float>(terse::fp16::from_bits(bits)));
    from_bf16[i] = __float_as_uint(terse::detail::bf16_bits_to_float(bits));
  }
}

__global__ void draw(terse::random_stream stream, std::uint64_t first, std::size_t n, std::uint32_t* bits,
                     float* uniforms)
{
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i < n) {
    bits[i] = stream.bits(first + i);
    uniforms[i] = stream.uniform(first + i);
  }
}

__global__ void philox_blocks(const terse::philox_counter* counters, terse::philox_key key, std::size_t n,
                              terse::philox_counter* out)
{
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i < n) {
    out[i] = terse::philox4x32_10(counters[i], key);
  }
}

std::uint32_t host_float_bits(float value)
{
  return terse::detail::float_bits(value);
}

}  // namespace

TEST_CASE("fp16 and bf16 rounding is bit-identical on host and device")
{
  // Every exponent, both signs, and low mantissa bits that hit ties, plus
  // the specials.
  std::vector<std::uint32_t> inputs;
  for (std::uint64_t i = 0; i < (std::uint64_t{1} << 20); ++i) {
    inputs.push_back(static_cast<std::uint32_t>((i << 12) | ((i * 2654435761u) & 0xfffu)));
  }
  for (const std::uint32_t special : {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u,
                                      0x477ff000u, 0x477fefffu, 0x33000000u, 0x33000001u, 0x38800000u, 0x387fffffu}) {
    inputs.push_back(special);
  }
  const std::size_t n = inputs.size();
  terse_test::device_vector<std::uint32_t> in(inputs);
  terse_test::device_vector<std::uint16_t> fp16_out(n);
  terse_test::device_vector<std::uint16_t> bf16_out(n);
  encode_16_bit<<<blocks_for(n), threads>>>(in.span().data(), n, fp16_out.span().data(), bf16_out.span().data());
  TERSE_CUDA_TRY(cudaGetLastError());
  const auto fp16_device = fp16_out.download();
  const auto bf16_device = bf16_out.download();
  std::size_t fp16_differ = 0;
  std::size_t bf16_differ = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float value = terse::detail::bits_float(inputs[i]);
    fp16_differ += fp16_device[i] != terse::detail::float_to_fp16_bits(value) ? 1 : 0;
    bf16_differ += bf16_device[i] != terse::bf16(value).bits ? 1 : 0;
  }
  CHECK(fp16_differ == 0);
  CHECK(bf16_differ == 0);

  const std::size_t patterns = std::size_t{1} << 16;
  terse_test::device_vector<std::uint32_t> from_fp16(patterns);
  terse_test::device_vector<std::uint32_t> from_bf16(patterns);
  decode_16_bit<<<blocks_for(patterns), threads>>>(patterns, from_fp16.span().data(), from_bf16.span().data());
  TERSE_CUDA_TRY(cudaGetLastError());
  const auto fp16_floats = from_fp16.download();
  const auto bf16_floats = from_bf16.download();
  std::size_t decode_differ = 0;
  for (std::size_t i = 0; i < patterns; ++i) {
    const auto bits = static_cast<std::uint16_t>(i);
    decode_differ += fp16_floats[i] != host_float_bits(static_cast<float>(terse::fp16::from_bits(bits))) ? 1 : 0;
    decode_differ += bf16_floats[i] != host_float_bits(terse::detail::bf16_bits_to_float(bits)) ? 1 : 0;
  }
  CHECK(decode_differ == 0);
}

TEST_CASE("random_stream draws are bit-identical on host and device")
{
  const terse::random_stream stream{.seed = 0x0123456789abcdefull, .step = 42, .stream = 7};
  const std::size_t n = 100'000;
  // Past 2^32, where the block counter's high word starts to matter.
  for (const std::uint64_t first : {std::uint64_t{0}, (std::uint64_t{1} << 34) - 50'000}) {
    CAPTURE(first);
    terse_test::device_vector<std::uint32_t> bits(n);
    terse_test::device_vector<float> uniforms(n);
    draw<<<blocks_for(n), threads>>>(stream, first, n, bits.span().data(), uniforms.span().data());
    TERSE_CUDA_TRY(cudaGetLastError());
    const auto device_bits = bits.download();
    const auto device_uniforms = uniforms.download();
    std::size_t differ = 0;
    for (std::size_t i = 0; i < n; ++i) {
      differ += device_bits[i] != stream.bits(first + i) ? 1 : 0;
      differ += host_float_bits(device_uniforms[i]) != host_float_bits(stream.uniform(first + i)) ? 1 : 0;
    }
    CHECK(differ == 0);
  }
}

TEST_CASE("philox4x32-10 on the device matches Random123's known answers")
{
  const std::vector<terse::philox_counter> counters = {
      {{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
  };
  const terse::philox_key keys[] = {
      {{0x00000000u, 0x00000000u}}, {{0xffffffffu, 0xffffffffu}}, {{0xa4093822u, 0x299f31d0u}}};
  const terse::philox_counter expected[] = {
      {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (std::size_t k = 0; k < counters.size(); ++k) {
    CAPTURE(k);
    terse_test::device_vector<terse::philox_counter> in(std::vector<terse::philox_counter>{counters[k]});
    terse_test::device_vector<terse::philox_counter> out(1);
    philox_blocks<<<1, 1>>>(in.span().data(), keys[k], 1, out.span().data());
    TERSE_CUDA_TRY(cudaGetLastError());
    const terse::philox_counter got = out.download()[0];
    for (int w = 0; w < 4; ++w) {
      CHECK(got.word[w] == expected[k].word[w]);
    }
  }
}

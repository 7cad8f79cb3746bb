#pragma once
// Shared by the quantizer tests (cast, uniform, qsgd, adaptive): reference
// encoders written from the format descriptions in the headers, independent
// of the library's loops, and small statistics helpers.

#include <terse/core/philox.hpp>
#include <terse/core/policy_types.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace quantizers_test {

inline std::size_t ceil_div(std::size_t a, std::size_t b)
{
  return (a + b - 1) / b;
}

inline void put_bytes(std::vector<std::byte>& out, std::size_t at, const void* value, std::size_t size)
{
  std::memcpy(out.data() + at, value, size);
}

/// The 24-byte header as wire.hpp describes it.
inline std::vector<std::byte> header(std::uint8_t codec, std::uint32_t param, std::uint64_t count, std::uint64_t aux,
                                     std::size_t total)
{
  std::vector<std::byte> out(total, std::byte{0});
  const std::uint16_t magic = 0x5354;
  put_bytes(out, 0, &magic, 2);
  out[2] = std::byte{terse::wire::version};
  out[3] = static_cast<std::byte>(codec);
  put_bytes(out, 4, &param, 4);
  put_bytes(out, 8, &count, 8);
  put_bytes(out, 16, &aux, 8);
  return out;
}

/// Element j's dither: 16 bits from block (j/64)*8 + j%8, word (j%64)/16,
/// half (j/8)%2, as u = (k + 1/2) 2^-16.
inline float reference_dither(const terse::random_stream& stream, std::uint64_t j)
{
  const terse::philox_counter block = stream.block((j / 64) * 8 + j % 8);
  const std::uint32_t word = block.word[(j % 64) / 16];
  const std::uint32_t k = (j / 8) % 2 == 0 ? (word & 0xffffu) : (word >> 16);
  return (static_cast<float>(k) + 0.5f) / 65536.0f;
}

inline void put_field(std::vector<std::byte>& out, std::size_t base, std::size_t i, unsigned bits, std::uint32_t field)
{
  for (unsigned b = 0; b < bits; ++b) {
    if ((field >> b) & 1u) {
      const std::size_t bit = i * bits + b;
      out[base + bit / 8] |= static_cast<std::byte>(1u << (bit % 8));
    }
  }
}

inline float prescale(double range)
{
  return range < 0x1p-60 ? 0x1p64f : (range > 0x1p64 ? 0x1p-32f : 1.0f);
}

/// uniform<bits> (or adaptive's body, codec id 13) as uniform.hpp describes it.
inline std::vector<std::byte> reference_uniform(const std::vector<float>& v, std::size_t bucket, unsigned bits,
                                                const terse::codec_context& ctx, std::uint8_t codec = 4)
{
  const std::size_t n = v.size();
  const std::size_t buckets = ceil_div(n, bucket);
  const std::size_t fields = 24 + 8 * buckets;
  std::vector<std::byte> out = header(codec, bits, n, bucket, fields + ceil_div(n * bits, 8));
  const std::uint32_t levels = (1u << bits) - 1;
  const terse::random_stream stream = ctx.private_stream();
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t begin = b * bucket;
    const std::size_t end = std::min(n, begin + bucket);
    float lo =
        *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(begin), v.begin() + static_cast<std::ptrdiff_t>(end));
    float hi =
        *std::max_element(v.begin() + static_cast<std::ptrdiff_t>(begin), v.begin() + static_cast<std::ptrdiff_t>(end));
    lo += 0.0f;  // +0, never -0
    hi += 0.0f;
    put_bytes(out, 24 + 8 * b, &lo, 4);
    put_bytes(out, 28 + 8 * b, &hi, 4);
    const double range = static_cast<double>(hi) - static_cast<double>(lo);
    const float pre = range > 0 ? prescale(range) : 1.0f;
    const float plo = range > 0 ? lo * pre : lo;
    const float scale = range > 0 ? static_cast<float>(levels / (range * pre)) : 0.0f;
    for (std::size_t i = begin; i < end; ++i) {
      const float d = std::fma(v[i], pre, -plo);
      const float r = std::fma(d, scale, reference_dither(stream, ctx.offset + i));
      const auto q = std::min(static_cast<std::uint32_t>(static_cast<std::int32_t>(r)), levels);
      put_field(out, fields, i, bits, q);
    }
  }
  return out;
}

/// The canonical norm of qsgd_math.hpp: scale by 2^k (1 for max|v| in
/// [2^-40, 2^40), else max|v| 2^k in [1, 2)), 32 interleaved fma partial
/// sums, the pairwise tree, sqrt in double.
inline float reference_norm(const float* v, std::size_t count)
{
  std::uint32_t max_bits = 0;
  for (std::size_t i = 0; i < count; ++i) {
    std::uint32_t b;
    std::memcpy(&b, &v[i], 4);
    max_bits = std::max(max_bits, b & 0x7fffffffu);
  }
  if (max_bits == 0) {
    return 0.0f;
  }
  // unscaled for max|v| in [2^-40, 2^40), else scaled so max|v| 2^k is in [1, 2)
  const bool unscaled = max_bits >= 0x2b800000u && max_bits < 0x53800000u;
  const int k = unscaled ? 0 : 127 - static_cast<int>(max_bits >> 23);
  const float factor = std::ldexp(1.0f, k);
  float lane[32] = {};
  for (std::size_t i = 0; i < count; ++i) {
    const float x = v[i] * factor;
    lane[i % 32] = std::fma(x, x, lane[i % 32]);
  }
  for (int w = 16; w >= 1; w /= 2) {
    for (int l = 0; l < w; ++l) {
      lane[l] = lane[l] + lane[l + w];
    }
  }
  const double norm = std::sqrt(static_cast<double>(lane[0])) * std::ldexp(1.0, -k);
  return norm >= FLT_MAX ? FLT_MAX : static_cast<float>(norm);
}

/// qsgd<levels> as qsgd.hpp describes it.
inline std::vector<std::byte> reference_qsgd(const std::vector<float>& v, std::size_t bucket, std::uint32_t levels,
                                             const terse::codec_context& ctx)
{
  unsigned bits = 1;
  while ((1u << (bits - 1)) <= levels) {
    ++bits;
  }
  const std::size_t n = v.size();
  const std::size_t buckets = ceil_div(n, bucket);
  const std::size_t fields = 24 + 4 * buckets;
  std::vector<std::byte> out = header(5, levels, n, bucket, fields + ceil_div(n * bits, 8));
  const terse::random_stream stream = ctx.private_stream();
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t begin = b * bucket;
    const std::size_t end = std::min(n, begin + bucket);
    const float norm = reference_norm(v.data() + begin, end - begin);
    put_bytes(out, 24 + 4 * b, &norm, 4);
    const float pre = norm > 0 ? prescale(norm) : 1.0f;
    const float scale = norm > 0 ? static_cast<float>(levels / (static_cast<double>(norm) * pre)) : 0.0f;
    for (std::size_t i = begin; i < end; ++i) {
      const float r = std::fma(std::fabs(v[i]) * pre, scale, reference_dither(stream, ctx.offset + i));
      const auto level = std::min(static_cast<std::uint32_t>(static_cast<std::int32_t>(r)), levels);
      put_field(out, fields, i, bits, (level << 1) | (std::signbit(v[i]) ? 1u : 0u));
    }
  }
  return out;
}

/// min and max of bucket b of v.
inline std::pair<float, float> bucket_range(const std::vector<float>& v, std::size_t bucket, std::size_t b)
{
  const auto begin = v.begin() + static_cast<std::ptrdiff_t>(b * bucket);
  const auto end = v.begin() + static_cast<std::ptrdiff_t>(std::min(v.size(), (b + 1) * bucket));
  return {*std::min_element(begin, end), *std::max_element(begin, end)};
}

/// Values for unbiasedness tests: every kind of position within a level,
/// exact levels, a constant bucket, zeros and both signs.
inline std::vector<float> unbiased_probe(std::size_t n)
{
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = std::sin(static_cast<float>(i) * 1.7f) * (1.0f + static_cast<float>(i % 5));
  }
  return v;
}

}  // namespace quantizers_test

#pragma once
/// @file
/// `compress::uniform<Bits>`: b-bit stochastic uniform quantization per
/// bucket (Bits = 8, 4 or 2). Requantizable and unbiased.
///
/// Each bucket of `bucket` values (counted from the start of the input) is
/// described by its min and max; value v goes to level
/// q = floor((v - min) / (max - min) * (2^b - 1) + u), u in (0, 1) drawn from
/// ctx.private_stream() at index ctx.offset + i with 16 bits of resolution
/// (detail/quantizer_draws.hpp), and decodes to min + q * (max - min) / (2^b - 1).
///
/// Properties:
/// - |v - decode(v)| <= (max - min) / (2^b - 1) of its bucket (one step),
///   up to float rounding of that step;
/// - E[decode(v)] = v within 2^-17 of a step (dither resolution) plus
///   float rounding of the level (2^-24 * (2^b - 1) steps);
/// - a constant bucket (max == min) decodes exactly; ±FLT_MAX ranges work
///   (the range is taken in double and values are prescaled);
/// - NaN or Inf anywhere in the input: encode throws errc::non_finite.
/// - Sharding: a shard that starts at a multiple of `bucket` within the
///   whole and is encoded with ctx.offset = its start writes exactly the
///   bytes of the whole's encoding for those buckets.
///
/// Wire (after the 24-byte header: codec uniform, param = Bits,
/// count = n, aux = bucket):
///     ceil(n/B) x (float min, float max)          8 bytes per bucket
///     n fields of Bits bits, little-endian within bytes, field i at bit i*Bits,
///     last byte zero-padded                        ceil(n*Bits/8) bytes
/// so max_encoded_bytes(n) = 24 + 8*ceil(n/B) + ceil(n*Bits/8), exactly.

#include <terse/compress/detail/uniform_host.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace terse::compress {

/// @tparam Bits bits per value: 8, 4 or 2.
template <unsigned Bits>
struct uniform {
  static_assert(Bits == 8 || Bits == 4 || Bits == 2, "compress::uniform<Bits>: Bits must be 8, 4 or 2");
  static constexpr aggregation aggregation_kind = aggregation::requantizable;
  static constexpr wire::codec_id id = wire::codec_id::uniform;
  static constexpr unsigned bits = Bits;

  /// Values per bucket: each bucket sends its own min and max (8 bytes).
  std::uint32_t bucket = 512;

  /// Exactly the payload size for n values.
  std::size_t max_encoded_bytes(std::size_t n) const
  {
    check_bucket();
    return static_cast<std::size_t>(wire::header_bytes + detail::uniform_body_bytes(n, bucket, Bits));
  }

  /// Quantizes `in` into `out` (header + body); returns the bytes written.
  /// Throws errc::invalid_argument if `out` is too small, errc::non_finite
  /// if `in` holds NaN or Inf.
  std::size_t encode(const codec_context& ctx, host_span<const float> in, host_span<std::byte> out) const
  {
    return encode_from<false>(ctx, {in.data(), nullptr, nullptr}, in.size(), out);
  }

  /// Codes p = g + e_old and writes e_new = p - decode(p) in the same pass;
  /// the bytes equal encode(p) and e_new equals, bit for bit, p minus what
  /// decode_add adds to zeros.
  std::size_t encode_residual(const codec_context& ctx, host_span<const float> g, host_span<const float> e_old,
                              host_span<float> e_new, host_span<std::byte> out) const
  {
    TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                  "uniform::encode_residual: g, e_old and e_new must have the same length");
    return encode_from<true>(ctx, {g.data(), e_old.data(), e_new.data()}, g.size(), out);
  }

  /// Validates `payload` completely, then adds its decoded values into acc.
  /// Throws errc::malformed_payload (acc untouched) for anything but a
  /// uniform<Bits> payload of acc.size() values with this bucket size.
  void decode_add(const codec_context&, host_span<const std::byte> payload, host_span<float> acc) const
  {
    check_bucket();
    const wire::header h = wire::read_header(payload, id, acc.size());
    TERSE_CHECK(h.param == Bits, errc::malformed_payload,
                "uniform<" + std::to_string(Bits) + "> payload carries bit width " + std::to_string(h.param));
    TERSE_CHECK(
        h.aux == bucket, errc::malformed_payload,
        "uniform payload has bucket size " + std::to_string(h.aux) + "; this codec uses " + std::to_string(bucket));
    const std::uint64_t n = acc.size();
    const std::uint64_t body =
        wire::checked_add(wire::checked_mul(detail::bucket_count(n, bucket), 8), detail::packed_bytes(n, Bits));
    wire::expect_length(payload, wire::checked_add(wire::header_bytes, body), id);
    const std::byte* start = payload.data() + wire::header_bytes;
    detail::uniform_check_body(start, acc.size(), bucket, Bits, "uniform");
    detail::uniform_decode_body<Bits>(start, bucket, acc.data(), acc.size());
  }

  friend std::ostream& operator<<(std::ostream& os, const uniform& u)
  {
    return os << "uniform<" << Bits << ">{bucket=" << u.bucket << '}';
  }

 private:
  void check_bucket() const { TERSE_EXPECTS(bucket > 0, "uniform: bucket must be at least 1"); }

  template <bool Residual>
  std::size_t encode_from(const codec_context& ctx, detail::quantizer_source src, std::size_t n,
                          host_span<std::byte> out) const
  {
    const std::size_t bytes = max_encoded_bytes(n);
    TERSE_EXPECTS(out.size() >= bytes, "uniform: the output holds " + std::to_string(out.size()) +
                                           " bytes; the payload needs " + std::to_string(bytes));
    wire::write_header(out, {.codec = id, .param = Bits, .count = n, .aux = bucket});
    detail::uniform_encode_body<Bits, Residual>(bucket, ctx, src, n, out.data() + wire::header_bytes);
    return bytes;
  }
};

using uniform8 = uniform<8>;
using uniform4 = uniform<4>;
using uniform2 = uniform<2>;

}  // namespace terse::compress

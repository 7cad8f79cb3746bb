#pragma once
/// @file
/// `compress::qsgd<Levels>`: QSGD (Alistarh et al. 2017) per bucket, with
/// s = Levels quantisation levels between 0 and the bucket's l2 norm.
/// Requantizable and unbiased.
///
/// Each bucket of `bucket` values (counted from the start of the input)
/// sends its norm N = ||v||_2; value v goes to level
/// l = floor(s * |v| / N + u), u in (0, 1) drawn from ctx.private_stream()
/// at index ctx.offset + i with 16 bits of resolution
/// (detail/quantizer_draws.hpp), sent with its sign, and decodes to
/// sign(v) * l * N / s.
///
/// Properties:
/// - E[decode(v)] = v within 2^-17 of a level (N / s) plus float rounding;
/// - |v - decode(v)| <= N / s (one level) of its bucket;
/// - the norm is summed in one canonical order (detail/qsgd_math.hpp), so
///   host and device agree to the bit;
/// - an all-zero bucket sends N = 0 and decodes to zeros; values near
///   FLT_MAX work (a norm above FLT_MAX is saturated, which biases that
///   bucket); NaN or Inf anywhere in the input: encode throws
///   errc::non_finite.
/// - Sharding: as for uniform, a shard starting at a multiple of `bucket`
///   encoded with ctx.offset = its start writes the whole's bytes.
///
/// Wire (after the 24-byte header: codec qsgd, param = Levels, count = n,
/// aux = bucket):
///     ceil(n/B) x float norm                                   4 bytes per bucket
///     n fields of b = 1 + log2(Levels + 1) bits: (level << 1) | sign,
///     little-endian within bytes, field i at bit i*b, last byte
///     zero-padded                                              ceil(n*b/8) bytes
/// so max_encoded_bytes(n) = 24 + 4*ceil(n/B) + ceil(n*b/8), exactly.

#include <terse/compress/detail/qsgd_host.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace terse::compress {

/// @tparam Levels s, the number of nonzero levels: 2^k - 1 for k in 1..7
///         (1, 3, 7, 15, 31, 63, 127), so a field (sign + level) is
///         k + 1 = 2..8 bits and every field value is a valid level.
template <std::uint32_t Levels>
struct qsgd {
  static_assert(Levels == 1 || Levels == 3 || Levels == 7 || Levels == 15 || Levels == 31 || Levels == 63 ||
                    Levels == 127,
                "compress::qsgd<Levels>: Levels must be 2^k - 1 with k in 1..7 (1, 3, 7, 15, 31, 63 or 127)");
  static constexpr aggregation aggregation_kind = aggregation::requantizable;
  static constexpr wire::codec_id id = wire::codec_id::qsgd;
  static constexpr std::uint32_t levels = Levels;
  /// Bits per value on the wire: a sign and the level.
  static constexpr unsigned bits = detail::qsgd_field_bits(Levels);

  /// Values per bucket: each bucket sends its own norm (4 bytes).
  std::uint32_t bucket = 512;

  /// Exactly the payload size for n values.
  std::size_t max_encoded_bytes(std::size_t n) const
  {
    check_bucket();
    return static_cast<std::size_t>(wire::header_bytes + detail::qsgd_body_bytes(n, bucket, bits));
  }

  /// Quantizes `in` into `out` (header + body); returns the bytes written.
  /// Throws errc::invalid_argument if `out` is too small, errc::non_finite
  /// if `in` holds NaN or Inf.
  std::size_t encode(const codec_context& ctx, host_span<const float> in, host_span<std::byte> out) const
  {
    return encode_from<false>(ctx, {in.data(), nullptr, nullptr}, in.size(), out);
  }

  /// Codes p = g + e_old and writes e_new = p - decode(p) in the same pass.
  std::size_t encode_residual(const codec_context& ctx, host_span<const float> g, host_span<const float> e_old,
                              host_span<float> e_new, host_span<std::byte> out) const
  {
    TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                  "qsgd::encode_residual: g, e_old and e_new must have the same length");
    return encode_from<true>(ctx, {g.data(), e_old.data(), e_new.data()}, g.size(), out);
  }

  /// Validates `payload` completely, then adds its decoded values into acc.
  /// Throws errc::malformed_payload (acc untouched) for anything but a
  /// qsgd<Levels> payload of acc.size() values with this bucket size.
  void decode_add(const codec_context&, host_span<const std::byte> payload, host_span<float> acc) const
  {
    check_bucket();
    const wire::header h = wire::read_header(payload, id, acc.size());
    TERSE_CHECK(h.param == Levels, errc::malformed_payload,
                "qsgd<" + std::to_string(Levels) + "> payload carries " + std::to_string(h.param) + " levels");
    TERSE_CHECK(
        h.aux == bucket, errc::malformed_payload,
        "qsgd payload has bucket size " + std::to_string(h.aux) + "; this codec uses " + std::to_string(bucket));
    const std::uint64_t n = acc.size();
    const std::uint64_t body =
        wire::checked_add(wire::checked_mul(detail::bucket_count(n, bucket), 4), detail::packed_bytes(n, bits));
    wire::expect_length(payload, wire::checked_add(wire::header_bytes, body), id);
    const std::byte* start = payload.data() + wire::header_bytes;
    detail::qsgd_check_body(start, acc.size(), bucket, bits);
    detail::qsgd_decode_body<Levels>(start, bucket, acc.data(), acc.size());
  }

  friend std::ostream& operator<<(std::ostream& os, const qsgd& q)
  {
    return os << "qsgd<" << Levels << ">{bucket=" << q.bucket << '}';
  }

 private:
  void check_bucket() const { TERSE_EXPECTS(bucket > 0, "qsgd: bucket must be at least 1"); }

  template <bool Residual>
  std::size_t encode_from(const codec_context& ctx, detail::quantizer_source src, std::size_t n,
                          host_span<std::byte> out) const
  {
    const std::size_t bytes = max_encoded_bytes(n);
    TERSE_EXPECTS(out.size() >= bytes, "qsgd: the output holds " + std::to_string(out.size()) +
                                           " bytes; the payload needs " + std::to_string(bytes));
    wire::write_header(out, {.codec = id, .param = Levels, .count = n, .aux = bucket});
    detail::qsgd_encode_body<Levels, Residual>(bucket, ctx, src, n, out.data() + wire::header_bytes);
    return bytes;
  }
};

}  // namespace terse::compress

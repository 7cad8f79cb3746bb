#pragma once
/// @file
/// `compress::sign`: the scaled sign compressor of EF-signSGD (Karimireddy,
/// Rebjock, Stich, Jaggi: "Error Feedback Fixes SignSGD and other Gradient
/// Compression Schemes", ICML 2019). One bit per value and one scale per
/// bucket of B values:
///
///     decode(v)_i = scale_j * s(v_i),  scale_j = ||v_j||_1 / B_j  (mean |v|)
///
/// over bucket j of B_j values (B, or fewer for the last), with s(v) = -1
/// for v < 0 and +1 otherwise: zeros (+0 and -0) code as +, so a zero
/// decodes to +scale_j. This is the compressor C(v) = (||v||_1/d) sign(v)
/// for which EF-signSGD's guarantees hold (it is a delta-approximate
/// compressor with delta = ||v||_1^2 / (d ||v||_2^2)). It is BIASED: use it
/// with error feedback (feedback::residual); `encode_residual` fuses that.
///
/// Aggregation is requantizable: the owner of a shard decodes the W shards,
/// averages them and re-encodes the mean of scaled signs with `sign`.
///
/// Wire body after the 24-byte header (param = 1, aux = B):
///
///     offset        size          field
///     0             4*ceil(n/B)   scales, float32 little-endian, bucket order
///     4*ceil(n/B)   ceil(n/8)     signs: bit i%8 of byte i/8 set = negative;
///                                 unused high bits of the last byte are 0
///
/// Edge policy: NaN or +-Inf input raises errc::non_finite (found in the
/// summing pass). Finite input never gives a non-finite scale: the mean is
/// summed in double, in a fixed order shared by host and device (see
/// detail/sign_math.hpp), so +-FLT_MAX, subnormals and all-zero buckets
/// are exact or correctly rounded. n = 0 gives a header-only payload. The
/// decoder refuses a scale that is negative or not finite, nonzero padding
/// bits, and a parameter or bucket size other than its own.

#include <terse/compress/detail/sign_host.hpp>
#include <terse/compress/detail/signs_common.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <ostream>

namespace terse::compress {

struct sign {
  static constexpr aggregation aggregation_kind = aggregation::requantizable;
  static constexpr wire::codec_id id = wire::codec_id::sign;
  /// Header `param` of a sign payload: one bit per value.
  static constexpr std::uint32_t wire_param = 1;

  /// Values per scale (B >= 1). A multiple of 8 takes the vectorised path.
  std::size_t bucket = 512;

  /// Exact payload size: 24 + 4*ceil(n/B) + ceil(n/8) bytes.
  std::size_t max_encoded_bytes(std::size_t n) const
  {
    check_config();
    return wire::header_bytes + 4 * detail::bucket_count(n, bucket) + detail::packed_bytes(n, 1);
  }

  /// Codes `in` into `out`; returns the bytes written (max_encoded_bytes).
  std::size_t encode(const codec_context&, host_span<const float> in, host_span<std::byte> out) const
  {
    const std::size_t bytes = prepare(in.size(), out);
    detail::sign_encode_body<false>({.g = in.data()}, in.size(), bucket, scales_of(out), bits_of(out, in.size()));
    return bytes;
  }

  /// Fused error feedback: codes p = g + e_old into `out` and writes
  /// e_new = p - decode(p), in one pass over memory (each bucket's second
  /// touch hits L1). Bit-identical to encode(p), decode_add into zeros,
  /// and a subtraction. `e_new` may alias `e_old`.
  std::size_t encode_residual(const codec_context&, host_span<const float> g, host_span<const float> e_old,
                              host_span<float> e_new, host_span<std::byte> out) const
  {
    TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                  "sign::encode_residual needs g, e_old and e_new of one size");
    const std::size_t bytes = prepare(g.size(), out);
    detail::sign_encode_body<true>({.g = g.data(), .e_old = e_old.data(), .e_new = e_new.data()}, g.size(), bucket,
                                   scales_of(out), bits_of(out, g.size()));
    return bytes;
  }

  /// Validates `payload` (header, exact length, every scale finite and
  /// non-negative, padding bits zero), then adds +-scale into `acc`.
  void decode_add(const codec_context&, host_span<const std::byte> payload, host_span<float> acc) const
  {
    check_config();
    const std::size_t n = acc.size();
    const std::size_t bits_at = detail::check_bucketed_payload(payload, id, n, wire_param, bucket, 1);
    detail::sign_decode_body(payload.data() + wire::header_bytes, payload.data() + bits_at, n, bucket, acc.data());
  }

  friend std::ostream& operator<<(std::ostream& os, const sign& c) { return os << "sign{bucket=" << c.bucket << '}'; }

 private:
  void check_config() const { TERSE_EXPECTS(bucket >= 1, "sign needs a bucket of at least one value"); }

  std::size_t prepare(std::size_t n, host_span<std::byte> out) const
  {
    const std::size_t bytes = max_encoded_bytes(n);
    TERSE_EXPECTS(out.size() >= bytes, "sign needs max_encoded_bytes(n) bytes of output");
    wire::write_header(out, {.codec = id, .param = wire_param, .count = n, .aux = bucket});
    return bytes;
  }
  std::byte* scales_of(host_span<std::byte> out) const { return out.data() + wire::header_bytes; }
  std::byte* bits_of(host_span<std::byte> out, std::size_t n) const
  {
    return out.data() + wire::header_bytes + 4 * detail::bucket_count(n, bucket);
  }
};

}  // namespace terse::compress

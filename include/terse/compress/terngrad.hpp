#pragma once
/// @file
/// `compress::terngrad`: ternary gradients (Wen, Xu, Yan, Wu, Wang, Chen,
/// Li: "TernGrad: Ternary Gradients to Reduce Communication in Distributed
/// Deep Learning", NIPS 2017). Per bucket of B values s = max|v|, and each
/// value becomes
///
///     t_i = sign(v_i) * Bernoulli(|v_i| / s)  in {-1, 0, +1},  decode s * t_i
///
/// so E[decode] = v (unbiased, to the 16-bit resolution of the draws:
/// |E[decode(v)] - v| <= s (2^-17 + 2^-24) per element; see
/// detail/terngrad_math.hpp) and |decode(v) - v| <= s always. The draws come
/// from ctx.private_stream() at ctx.offset + i, so ranks round
/// independently (averaging shrinks the noise), a shard draws what the
/// whole bucket would there, and anyone who knows the context can replay
/// them. Aggregation is requantizable (the shard owner decodes the W
/// shards, averages and re-encodes with phase 1).
///
/// Wire body after the 24-byte header (param = 2, aux = B):
///
///     offset        size          field
///     0             4*ceil(n/B)   scales s = max|v|, float32 LE, bucket order
///     4*ceil(n/B)   ceil(n/4)     codes, 2 bits each, element i in bits
///                                 2(i%4), 2(i%4)+1 of byte i/4: 0 -> 0,
///                                 1 -> +1, 2 -> -1 (3 is malformed);
///                                 unused high bits of the last byte are 0
///
/// Edge policy: NaN or +-Inf input raises errc::non_finite (found by the
/// max pass, which compares bit patterns). The scale is an input value, so
/// it is finite for finite input (+-FLT_MAX, subnormals included); an
/// all-zero bucket has s = 0 and all codes 0. n = 0 gives a header-only
/// payload. The decoder refuses scales that are negative or not finite,
/// code 3, nonzero padding, and a parameter or bucket size other than its
/// own.

#include <terse/compress/detail/signs_common.hpp>
#include <terse/compress/detail/terngrad_host.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <ostream>

namespace terse::compress {

struct terngrad {
  static constexpr aggregation aggregation_kind = aggregation::requantizable;
  static constexpr wire::codec_id id = wire::codec_id::terngrad;
  /// Header `param` of a terngrad payload: two bits per value.
  static constexpr std::uint32_t wire_param = 2;

  /// Values per scale (B >= 1). A multiple of 4 takes the vectorised path.
  std::size_t bucket = 512;

  /// Exact payload size: 24 + 4*ceil(n/B) + ceil(n/4) bytes.
  std::size_t max_encoded_bytes(std::size_t n) const
  {
    check_config();
    return wire::header_bytes + 4 * detail::bucket_count(n, bucket) + detail::packed_bytes(n, 2);
  }

  /// Codes `in` into `out` with draws from ctx.private_stream() at
  /// ctx.offset + i; returns the bytes written (max_encoded_bytes).
  std::size_t encode(const codec_context& ctx, host_span<const float> in, host_span<std::byte> out) const
  {
    const std::size_t bytes = prepare(in.size(), out);
    detail::terngrad_encode_body<false>({.g = in.data()}, ctx.private_stream(), ctx.offset, in.size(), bucket,
                                        scales_of(out), codes_of(out, in.size()));
    return bytes;
  }

  /// Fused error feedback: codes p = g + e_old into `out` and writes
  /// e_new = p - decode(p) in one pass over memory. Bit-identical to
  /// encode(p), decode_add into zeros, and a subtraction. `e_new` may
  /// alias `e_old`.
  std::size_t encode_residual(const codec_context& ctx, host_span<const float> g, host_span<const float> e_old,
                              host_span<float> e_new, host_span<std::byte> out) const
  {
    TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                  "terngrad::encode_residual needs g, e_old and e_new of one size");
    const std::size_t bytes = prepare(g.size(), out);
    detail::terngrad_encode_body<true>({.g = g.data(), .e_old = e_old.data(), .e_new = e_new.data()},
                                       ctx.private_stream(), ctx.offset, g.size(), bucket, scales_of(out),
                                       codes_of(out, g.size()));
    return bytes;
  }

  /// Validates `payload` (header, exact length, scales, codes, padding),
  /// then adds s * t into `acc`.
  void decode_add(const codec_context&, host_span<const std::byte> payload, host_span<float> acc) const
  {
    check_config();
    const std::size_t n = acc.size();
    const std::size_t codes_at = detail::check_bucketed_payload(payload, id, n, wire_param, bucket, 2);
    TERSE_CHECK(detail::terngrad_invalid_codes(payload.data() + codes_at, detail::packed_bytes(n, 2)) == 0,
                errc::malformed_payload, "terngrad payload holds the unused code 3");
    detail::terngrad_decode_body(payload.data() + wire::header_bytes, payload.data() + codes_at, n, bucket, acc.data());
  }

  friend std::ostream& operator<<(std::ostream& os, const terngrad& c)
  {
    return os << "terngrad{bucket=" << c.bucket << '}';
  }

 private:
  void check_config() const { TERSE_EXPECTS(bucket >= 1, "terngrad needs a bucket of at least one value"); }

  std::size_t prepare(std::size_t n, host_span<std::byte> out) const
  {
    const std::size_t bytes = max_encoded_bytes(n);
    TERSE_EXPECTS(out.size() >= bytes, "terngrad needs max_encoded_bytes(n) bytes of output");
    wire::write_header(out, {.codec = id, .param = wire_param, .count = n, .aux = bucket});
    return bytes;
  }
  std::byte* scales_of(host_span<std::byte> out) const { return out.data() + wire::header_bytes; }
  std::byte* codes_of(host_span<std::byte> out, std::size_t n) const
  {
    return out.data() + wire::header_bytes + 4 * detail::bucket_count(n, bucket);
  }
};

}  // namespace terse::compress

#pragma once
/// @file
/// `compress::cast<Storage>`: send each value as a 16-bit float, binary16
/// (`cast_fp16`) or bfloat16 (`cast_bf16`). Summable: the collective
/// allreduces the 16-bit values directly (accumulating in fp32).
///
/// Rounding is to nearest even (the conversions of core/numeric.hpp, with
/// F16C and AVX2 fast paths that give the same bits); |v - decode(v)| <=
/// half an ulp of the storage type within its range (2^-11 |v| for fp16
/// normals, 2^-8 |v| for bf16), and fp16 flushes nothing: tiny values become
/// subnormals or signed zero. NaN or Inf in the input: encode throws
/// errc::non_finite.
///
/// A finite value beyond the storage range (|v| >= 65520 for fp16, about
/// 3.3961e38 for bf16: it would round to Inf) follows `on_overflow`
/// (compress/overflow.hpp): `raise` (the default) throws errc::non_finite
/// like a NaN, so a collective raises it on every rank; `infinity` sends
/// +-Inf, so the average holds Inf for a loss scaler to see; `saturate`
/// clamps to the largest finite value (+-65504, +-3.3895e38) silently.
///
/// Wire: the 24-byte header (codec cast_fp16 or cast_bf16, param 0,
/// count n, aux 0), then n little-endian 16-bit values: 24 + 2n bytes.
/// decode_add rejects a payload holding a NaN pattern, and an Inf unless
/// `on_overflow` is `infinity`.

#include <terse/compress/detail/cast_host.hpp>
#include <terse/compress/overflow.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <type_traits>

namespace terse::compress {

/// @tparam Storage terse::fp16 or terse::bf16
template <class Storage>
struct cast {
  static_assert(std::is_same_v<Storage, fp16> || std::is_same_v<Storage, bf16>,
                "compress::cast<Storage>: Storage must be terse::fp16 or terse::bf16");
  static constexpr aggregation aggregation_kind = aggregation::summable;
  static constexpr wire::codec_id id =
      std::is_same_v<Storage, fp16> ? wire::codec_id::cast_fp16 : wire::codec_id::cast_bf16;
  using wire_type = Storage;

  /// What a finite value beyond the storage range becomes (see above).
  overflow on_overflow = overflow::raise;

  /// True when the average may hold Inf by design (error feedback refuses it).
  bool passes_infinity() const noexcept { return on_overflow == overflow::infinity; }

  /// Exactly the payload size for n values: 24 + 2n.
  std::size_t max_encoded_bytes(std::size_t n) const noexcept { return wire::header_bytes + 2 * n; }

  /// 16-bit values on the wire for n inputs (the summable path).
  std::size_t wire_count(std::size_t n) const noexcept { return n; }

  /// Converts `in` into `out` (header + values); returns the bytes written.
  /// Throws errc::invalid_argument if `out` is too small, errc::non_finite
  /// if `in` holds NaN or Inf.
  std::size_t encode(const codec_context&, host_span<const float> in, host_span<std::byte> out) const
  {
    return encode_from(in.data(), nullptr, nullptr, in.size(), out);
  }

  /// Codes p = g + e_old and writes e_new = p - float(cast(p)) in the same pass.
  std::size_t encode_residual(const codec_context&, host_span<const float> g, host_span<const float> e_old,
                              host_span<float> e_new, host_span<std::byte> out) const
  {
    TERSE_EXPECTS(e_old.size() == g.size() && e_new.size() == g.size(),
                  "cast::encode_residual: g, e_old and e_new must have the same length");
    return encode_from(g.data(), e_old.data(), e_new.data(), g.size(), out);
  }

  /// The summable path: `in` converted to wire values (same length).
  void encode_values(const codec_context&, host_span<const float> in, host_span<Storage> wire) const
  {
    TERSE_EXPECTS(wire.size() == in.size(), "cast::encode_values: one wire value per input value");
    const bool finite = detail::cast_encode<Storage>(on_overflow, in.data(), nullptr, nullptr, in.size(),
                                                     reinterpret_cast<std::byte*>(wire.data()));
    TERSE_CHECK(finite, errc::non_finite, problem());
  }

  /// The summable path: out[i] = float(wire[i]) (overwrites out). Values
  /// pass through as they are, including an Inf a sum may have reached.
  void decode_values(const codec_context&, host_span<const Storage> wire, host_span<float> out) const
  {
    TERSE_EXPECTS(wire.size() == out.size(), "cast::decode_values: one output value per wire value");
    detail::cast_decode<Storage, false>(reinterpret_cast<const std::byte*>(wire.data()), wire.size(), out.data());
  }

  /// Validates `payload` completely (header, length, no Inf or NaN value),
  /// then adds its values into acc. Throws errc::malformed_payload (acc
  /// untouched) otherwise.
  void decode_add(const codec_context&, host_span<const std::byte> payload, host_span<float> acc) const
  {
    check_payload(payload, acc.size());
    detail::cast_decode<Storage, true>(payload.data() + wire::header_bytes, acc.size(), acc.data());
  }

  /// As decode_add, but out = the payload's values (a −0 stays −0).
  void decode(const codec_context&, host_span<const std::byte> payload, host_span<float> out) const
  {
    check_payload(payload, out.size());
    detail::cast_decode<Storage, false>(payload.data() + wire::header_bytes, out.size(), out.data());
  }

  friend std::ostream& operator<<(std::ostream& os, const cast& c)
  {
    return os << (std::is_same_v<Storage, fp16> ? "cast<fp16>{on_overflow=" : "cast<bf16>{on_overflow=")
              << c.on_overflow << '}';
  }

 private:
  void check_payload(host_span<const std::byte> payload, std::size_t n) const
  {
    const wire::header h = wire::read_header(payload, id, n);
    TERSE_CHECK(h.param == 0 && h.aux == 0, errc::malformed_payload,
                std::string(wire::to_string(id)) + " payload has nonzero parameter fields");
    wire::expect_length(payload, wire::checked_add(wire::header_bytes, wire::checked_mul(n, 2)), id);
    const std::byte* values = payload.data() + wire::header_bytes;
    if (on_overflow == overflow::infinity) {
      TERSE_CHECK(detail::cast_none_nan<Storage>(values, n), errc::malformed_payload,
                  std::string(wire::to_string(id)) + " payload holds a NaN value");
    } else {
      TERSE_CHECK(detail::cast_all_finite<Storage>(values, n), errc::malformed_payload,
                  std::string(wire::to_string(id)) + " payload holds an Inf or NaN value");
    }
  }

  std::size_t encode_from(const float* g, const float* e_old, float* e_new, std::size_t n,
                          host_span<std::byte> out) const
  {
    const std::size_t bytes = max_encoded_bytes(n);
    TERSE_EXPECTS(out.size() >= bytes, "cast: the output holds " + std::to_string(out.size()) +
                                           " bytes; the payload needs " + std::to_string(bytes));
    wire::write_header(out, {.codec = id, .param = 0, .count = n, .aux = 0});
    const bool finite = detail::cast_encode<Storage>(on_overflow, g, e_old, e_new, n, out.data() + wire::header_bytes);
    TERSE_CHECK(finite, errc::non_finite, problem());
    return bytes;
  }

  std::string problem() const
  {
    if (on_overflow == overflow::raise) {
      return std::string(wire::to_string(id)) +
             ": the input holds NaN, Inf or a value beyond the storage range (|v| >= " +
             (std::is_same_v<Storage, fp16> ? "65520" : "3.3961e38") +
             "); set on_overflow = overflow::infinity to pass Inf to a loss scaler, or saturate to clamp";
    }
    return std::string(wire::to_string(id)) + ": the input holds NaN or Inf (it must be finite)";
  }
};

using cast_fp16 = cast<fp16>;
using cast_bf16 = cast<bf16>;

}  // namespace terse::compress

#pragma once
/// @file
/// `compress::adaptive`: uniform b-bit quantization whose bit width follows
/// a schedule over training steps (seed 000 §3.2: fewer bits early, more as
/// training converges). Requantizable and unbiased, like uniform<b>.
///
/// Why this shape: early gradients are large and noisy, so coarse levels
/// add little to the noise SGD already has; late in training updates are
/// small and need resolution. The default schedule, over a configured
/// `horizon` of steps H, sends 2 bits for steps [0, 0.3 H), 4 bits for
/// [0.3 H, 0.7 H) and 8 bits from 0.7 H on. An explicit `schedule` of
/// (from_step, bits) stages replaces it.
///
/// The step is ctx.step. The width actually used is in the header (param),
/// and decode_add rejects a payload whose width is not the schedule's width
/// for ctx.step (sender and receiver disagree about the step or the
/// schedule).
///
/// Wire: the 24-byte header (codec adaptive, param = bits, count = n,
/// aux = bucket), then exactly the body of uniform<bits> (see uniform.hpp):
/// 8*ceil(n/B) bytes of (min, max) and ceil(n*bits/8) bytes of fields.
/// max_encoded_bytes(n) is that size for the widest width in the schedule.

#include <terse/compress/detail/uniform_host.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace terse::compress {

/// One stage of an adaptive schedule: from `from_step` on, send `bits` bits.
struct adaptive_stage {
  std::uint64_t from_step = 0;
  std::uint32_t bits = 8;  ///< 2, 4 or 8
};

struct adaptive {
  static constexpr aggregation aggregation_kind = aggregation::requantizable;
  static constexpr wire::codec_id id = wire::codec_id::adaptive;

  /// Values per bucket (each sends its min and max).
  std::uint32_t bucket = 512;
  /// Steps the default schedule spans: 2 bits below 0.3 * horizon, 4 bits
  /// below 0.7 * horizon, 8 bits after.
  std::uint64_t horizon = 10000;
  /// Explicit stages, replacing the default: the first from step 0,
  /// from_step strictly increasing, bits 2, 4 or 8.
  std::vector<adaptive_stage> schedule{};

  /// The bit width the schedule gives `step`. Throws errc::invalid_argument
  /// for a malformed explicit schedule.
  std::uint32_t bits_at(std::uint64_t step) const
  {
    if (schedule.empty()) {
      return step < tenths_of_horizon(3) ? 2u : step < tenths_of_horizon(7) ? 4u : 8u;
    }
    check_schedule();
    std::uint32_t bits = schedule.front().bits;
    for (const adaptive_stage& stage : schedule) {
      if (stage.from_step > step) {
        break;
      }
      bits = stage.bits;
    }
    return bits;
  }

  /// The widest bit width of the schedule (what max_encoded_bytes sizes for).
  std::uint32_t widest_bits() const
  {
    if (schedule.empty()) {
      return 8;
    }
    check_schedule();
    std::uint32_t widest = 0;
    for (const adaptive_stage& stage : schedule) {
      widest = stage.bits > widest ? stage.bits : widest;
    }
    return widest;
  }

  /// The payload size for n values at the widest width: an upper bound,
  /// exact at that width.
  std::size_t max_encoded_bytes(std::size_t n) const { return bytes_for(n, widest_bits()); }

  /// The payload size for n values at `bits` bits.
  std::size_t bytes_for(std::size_t n, std::uint32_t bits) const
  {
    check_bucket();
    return static_cast<std::size_t>(wire::header_bytes + detail::uniform_body_bytes(n, bucket, bits));
  }

  /// Quantizes `in` with the width of ctx.step; returns the bytes written.
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
                  "adaptive::encode_residual: g, e_old and e_new must have the same length");
    return encode_from<true>(ctx, {g.data(), e_old.data(), e_new.data()}, g.size(), out);
  }

  /// Validates `payload` completely (including that its width is the
  /// schedule's for ctx.step), then adds its decoded values into acc.
  void decode_add(const codec_context& ctx, host_span<const std::byte> payload, host_span<float> acc) const
  {
    check_bucket();
    const std::uint32_t expected = bits_at(ctx.step);
    const wire::header h = wire::read_header(payload, id, acc.size());
    TERSE_CHECK(h.param == 2 || h.param == 4 || h.param == 8, errc::malformed_payload,
                "adaptive payload carries bit width " + std::to_string(h.param) + "; widths are 2, 4 or 8");
    TERSE_CHECK(h.param == expected, errc::malformed_payload,
                "adaptive payload is " + std::to_string(h.param) + "-bit; the schedule gives step " +
                    std::to_string(ctx.step) + " " + std::to_string(expected) + " bits");
    TERSE_CHECK(
        h.aux == bucket, errc::malformed_payload,
        "adaptive payload has bucket size " + std::to_string(h.aux) + "; this codec uses " + std::to_string(bucket));
    const std::uint64_t n = acc.size();
    const std::uint64_t body =
        wire::checked_add(wire::checked_mul(detail::bucket_count(n, bucket), 8), detail::packed_bytes(n, h.param));
    wire::expect_length(payload, wire::checked_add(wire::header_bytes, body), id);
    const std::byte* start = payload.data() + wire::header_bytes;
    detail::uniform_check_body(start, acc.size(), bucket, h.param, "adaptive");
    switch (h.param) {
      case 2: detail::uniform_decode_body<2>(start, bucket, acc.data(), acc.size()); break;
      case 4: detail::uniform_decode_body<4>(start, bucket, acc.data(), acc.size()); break;
      default: detail::uniform_decode_body<8>(start, bucket, acc.data(), acc.size()); break;
    }
  }

  friend std::ostream& operator<<(std::ostream& os, const adaptive& a)
  {
    os << "adaptive{bucket=" << a.bucket << ", ";
    if (a.schedule.empty()) {
      return os << "horizon=" << a.horizon << " (2 bits, 4 from 30%, 8 from 70%)}";
    }
    os << "schedule=[";
    for (std::size_t i = 0; i < a.schedule.size(); ++i) {
      os << (i == 0 ? "" : ", ") << a.schedule[i].bits << " bits from step " << a.schedule[i].from_step;
    }
    return os << "]}";
  }

 private:
  void check_bucket() const { TERSE_EXPECTS(bucket > 0, "adaptive: bucket must be at least 1"); }

  /// floor(horizon * tenths / 10), without overflow.
  std::uint64_t tenths_of_horizon(std::uint64_t tenths) const
  {
    return horizon / 10 * tenths + horizon % 10 * tenths / 10;
  }

  void check_schedule() const
  {
    TERSE_EXPECTS(schedule.front().from_step == 0, "adaptive: the first stage of the schedule must start at step 0");
    for (std::size_t i = 0; i < schedule.size(); ++i) {
      const std::uint32_t b = schedule[i].bits;
      TERSE_EXPECTS(b == 2 || b == 4 || b == 8,
                    "adaptive: stage " + std::to_string(i) + " asks for " + std::to_string(b) + " bits; 2, 4 or 8");
      TERSE_EXPECTS(i == 0 || schedule[i].from_step > schedule[i - 1].from_step,
                    "adaptive: schedule stages must start at strictly increasing steps");
    }
  }

  template <bool Residual>
  std::size_t encode_from(const codec_context& ctx, detail::quantizer_source src, std::size_t n,
                          host_span<std::byte> out) const
  {
    const std::uint32_t bits = bits_at(ctx.step);
    const std::size_t bytes = bytes_for(n, bits);
    TERSE_EXPECTS(out.size() >= bytes, "adaptive: the output holds " + std::to_string(out.size()) +
                                           " bytes; the payload needs " + std::to_string(bytes));
    wire::write_header(out, {.codec = id, .param = bits, .count = n, .aux = bucket});
    std::byte* body = out.data() + wire::header_bytes;
    switch (bits) {
      case 2: detail::uniform_encode_body<2, Residual>(bucket, ctx, src, n, body); break;
      case 4: detail::uniform_encode_body<4, Residual>(bucket, ctx, src, n, body); break;
      default: detail::uniform_encode_body<8, Residual>(bucket, ctx, src, n, body); break;
    }
    return bytes;
  }
};

}  // namespace terse::compress

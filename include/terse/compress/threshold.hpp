#pragma once
/// @file
/// `compress::threshold`: sends every value with |v| >= tau as an (index,
/// value) pair. The count depends on the data, so the payload size varies;
/// max_encoded_bytes(n) = 24 + 8n bounds it and encode returns the real size.
///
/// Payload (gather-only; see detail/sparse_payload.hpp):
///
///     header  codec threshold, param = bits of tau (+0 for ±0), count = n,
///             aux = c (pairs sent)
///     c x u32 indices, strictly increasing, < n
///     c x f32 values, finite, |v| >= tau
///
/// 24 + 8c bytes. The decoder also checks |v| >= tau for every value.
///
/// Edge policy: NaN or ±Inf in the input raises errc::non_finite (they pass
/// every finite threshold, so the one pass sees them). tau = 0 sends every
/// value, zeros included (|±0| >= 0); -0 as tau means 0. At most 2^32 values
/// per bucket (32-bit indices).

#include <terse/compress/detail/sparse_filter.hpp>
#include <terse/compress/detail/sparse_payload.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>

namespace terse::compress {

struct threshold {
  static constexpr aggregation aggregation_kind = aggregation::gather_only;
  static constexpr wire::codec_id id = wire::codec_id::threshold;

  /// Values with |v| >= tau are sent; finite and >= 0.
  float tau = 1e-3f;

  /// 24 + 8n: the bound when every value passes. `encode` needs this much
  /// room and returns what it used (24 + 8c).
  std::size_t max_encoded_bytes(std::size_t n) const noexcept
  {
    return wire::header_bytes + static_cast<std::size_t>(detail::sparse_body_bytes(n));
  }

  std::size_t encode(const codec_context&, host_span<const float> in, host_span<std::byte> out) const
  {
    const std::size_t n = in.size();
    std::byte* body = prepare(n, out);
    const std::uint32_t threshold_key = key();
    const std::size_t c =
        detail::filter_to_body(n, body, [&](std::size_t at, std::size_t len, std::byte* index, std::byte* bits) {
          return detail::filter_at_least(in.data() + at, len, threshold_key, static_cast<std::uint32_t>(at), index,
                                         bits);
        });
    return finish(n, c, out);
  }

  /// Codes p = g + e_old and writes e_new = p with the sent coordinates
  /// zeroed, all in the one pass. e_new may alias g or e_old.
  std::size_t encode_residual(const codec_context&, host_span<const float> g, host_span<const float> e_old,
                              host_span<float> e_new, host_span<std::byte> out) const
  {
    TERSE_EXPECTS(g.size() == e_old.size() && g.size() == e_new.size(),
                  "threshold encode_residual needs g, e_old and e_new of one size");
    const std::size_t n = g.size();
    std::byte* body = prepare(n, out);
    const std::uint32_t threshold_key = key();
    const std::size_t c =
        detail::filter_to_body(n, body, [&](std::size_t at, std::size_t len, std::byte* index, std::byte* bits) {
          return detail::filter_residual(g.data() + at, e_old.data() + at, e_new.data() + at, len, threshold_key, true,
                                         static_cast<std::uint32_t>(at), index, bits);
        });
    return finish(n, c, out);
  }

  /// Validates the payload (header, tau finite and >= 0, length, ascending
  /// in-range indices, finite values with |v| >= tau), then adds it.
  void decode_add(const codec_context&, host_span<const std::byte> payload, host_span<float> accumulator) const
  {
    const std::uint64_t n = accumulator.size();
    const auto view = detail::validate_sparse_payload(
        payload, id, n, [n](std::uint32_t param, std::uint64_t count) { return header_verdict(param, count, n); });
    detail::add_sparse_body(view, accumulator);
  }

  /// Whether a header's parameter (tau's bits) is usable: sign clear and
  /// finite; every value must then reach tau.
  static detail::sparse_header_verdict header_verdict(std::uint32_t param, std::uint64_t, std::uint64_t)
  {
    return {param < detail::non_finite_key, param};
  }

  friend std::ostream& operator<<(std::ostream& os, const threshold& c)
  {
    return os << "threshold{tau=" << c.tau << "}";
  }

 private:
  std::uint32_t key() const noexcept { return detail::magnitude_key(tau); }

  /// Checks the arguments and returns the body; indices go at its start and
  /// values, for now, at its second half (4n bytes in).
  std::byte* prepare(std::size_t n, host_span<std::byte> out) const
  {
    TERSE_EXPECTS(detail::valid_threshold(tau), "threshold tau must be finite and >= 0");
    detail::check_sparse_encode_args(n, out.size(), max_encoded_bytes(n), "threshold");
    return detail::sparse_indices(out.data());
  }

  /// Moves the values next to the indices, rejects non-finite input and
  /// writes the header.
  std::size_t finish(std::size_t n, std::size_t c, host_span<std::byte> out) const
  {
    std::byte* body = detail::sparse_indices(out.data());
    std::uint32_t worst = 0;
    for (std::size_t j = 0; j < c; ++j) {
      worst = std::max(worst, detail::magnitude_key_of_bits(wire::load<std::uint32_t>(body + 4 * n + 4 * j)));
    }
    TERSE_CHECK(worst < detail::non_finite_key, errc::non_finite,
                "threshold: the input holds NaN or Inf; sparsifiers code finite values only");
    if (c != n) {
      std::memmove(body + 4 * c, body + 4 * n, 4 * c);
    }
    detail::write_sparse_header(out, id, detail::bits_float(key()), n, c);
    return wire::header_bytes + static_cast<std::size_t>(detail::sparse_body_bytes(c));
  }
};

}  // namespace terse::compress

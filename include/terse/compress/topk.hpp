#pragma once
/// @file
/// `compress::topk`: sends the k = ceil(density * n) values of largest
/// magnitude, exactly, as (index, value) pairs. Among equal magnitudes the
/// lower index wins, so the selection is a function of the input alone and
/// every backend sends the same bytes.
///
/// Payload (gather-only; see detail/sparse_payload.hpp):
///
///     header  codec topk, param = bits of density (float), count = n, aux = k
///     k x u32 indices, strictly increasing, < n
///     k x f32 values
///
/// exactly 24 + 8k bytes. Indices are 32-bit, so a bucket holds at most 2^32
/// values (encode raises invalid_argument beyond). Indices are not
/// delta-coded: the size stays exact and decoding stays one validated pass.
///
/// Edge policy: NaN or ±Inf anywhere in the input raises errc::non_finite
/// (found in the filter pass, which always lets them through). ±0, denormals
/// and ±FLT_MAX are ordinary values ordered by |v|; -0 ties with +0. n = 0
/// gives a header only; n > 0 sends at least one value.
///
/// Speed: one pass over the input (see detail/sparse_select.hpp) plus work
/// proportional to about 1.1k candidates; decode touches only the pairs.

#include <terse/compress/detail/sparse_payload.hpp>
#include <terse/compress/detail/sparse_select.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <ostream>

namespace terse::compress {

struct topk {
  static constexpr aggregation aggregation_kind = aggregation::gather_only;
  static constexpr wire::codec_id id = wire::codec_id::topk;
  /// encode always writes exactly max_encoded_bytes(n) (concepts::fixed_size_compressor).
  static constexpr bool fixed_encoded_size = true;

  /// Fraction of values sent, in (0, 1]; k = ceil(density * n).
  float density = 0.01f;
  /// Buffers reused across calls (not a setting; never needs touching).
  detail::sparse_workspace scratch{};

  /// Number of pairs sent for n values.
  std::size_t pairs(std::size_t n) const
  {
    TERSE_EXPECTS(detail::valid_density(density), "topk density must lie in (0, 1]");
    return static_cast<std::size_t>(detail::topk_count(density, n));
  }

  /// Exactly 24 + 8k bytes, k = ceil(density * n).
  std::size_t max_encoded_bytes(std::size_t n) const
  {
    return wire::header_bytes + static_cast<std::size_t>(detail::sparse_body_bytes(pairs(n)));
  }

  /// Writes the payload for `in`; returns max_encoded_bytes(in.size()).
  std::size_t encode(const codec_context&, host_span<const float> in, host_span<std::byte> out)
  {
    return encode_impl(detail::plain_values{in.data()}, in.size(), out);
  }

  /// Codes p = g + e_old and writes e_new = p with the sent coordinates
  /// zeroed (p - decode(p)), in the same pass. e_new may alias g or e_old.
  std::size_t encode_residual(const codec_context&, host_span<const float> g, host_span<const float> e_old,
                              host_span<float> e_new, host_span<std::byte> out)
  {
    TERSE_EXPECTS(g.size() == e_old.size() && g.size() == e_new.size(),
                  "topk encode_residual needs g, e_old and e_new of one size");
    const std::size_t used = encode_impl(detail::residual_values{g.data(), e_old.data(), e_new.data()}, g.size(), out);
    const std::size_t k = pairs(g.size());
    const std::byte* indices = out.data() + wire::header_bytes;
    for (std::size_t j = 0; j < k; ++j) {
      e_new[wire::load<std::uint32_t>(indices + 4 * j)] = 0.0f;
    }
    return used;
  }

  /// Validates the payload (header, k = ceil(density * n) for the density it
  /// names, length, ascending in-range indices, finite values), then adds it.
  void decode_add(const codec_context&, host_span<const std::byte> payload, host_span<float> accumulator) const
  {
    const std::uint64_t n = accumulator.size();
    const auto view = detail::validate_sparse_payload(
        payload, id, n, [n](std::uint32_t param, std::uint64_t count) { return header_verdict(param, count, n); });
    detail::add_sparse_body(view, accumulator);
  }

  /// Whether a header's parameter (density bits) and pair count are
  /// consistent for n values (used by the host and device decoders).
  static detail::sparse_header_verdict header_verdict(std::uint32_t param, std::uint64_t count, std::uint64_t n)
  {
    const float wire_density = detail::bits_float(param);
    return {detail::valid_density(wire_density) && count == detail::topk_count(wire_density, n), 0};
  }

  friend std::ostream& operator<<(std::ostream& os, const topk& c) { return os << "topk{density=" << c.density << "}"; }

 private:
  template <class Source>
  std::size_t encode_impl(const Source& source, std::size_t n, host_span<std::byte> out)
  {
    const std::size_t k = pairs(n);
    const std::size_t bytes = wire::header_bytes + static_cast<std::size_t>(detail::sparse_body_bytes(k));
    detail::check_sparse_encode_args(n, out.size(), bytes, "topk");
    detail::write_sparse_header(out, id, density, n, k);
    std::byte* indices = detail::sparse_indices(out.data());
    std::byte* values = detail::sparse_values(out.data(), k);
    if (k == n) {
      detail::select_all(source, n, indices, values, "topk");
    } else if (k > 0) {
      detail::select_top_k(source, n, k, scratch, indices, values, "topk");
    }
    return bytes;
  }
};

}  // namespace terse::compress

#pragma once
/// @file
/// `compress::dgc`: the sparsifier of Deep Gradient Compression (Lin et al.
/// 2018). It aims at k = ceil(density * n) values without an exact top-k:
///
/// 1. the threshold is the k-th magnitude scaled to a random sample
///    (`sample_fraction` of the values, at least 1024, positions drawn from
///    `ctx.private_stream()` at indices 0, 1, ...), or, with
///    `reuse_threshold`, the threshold this bucket ended with last step;
/// 2. one filter pass collects every |v| >= threshold;
/// 3. a count within k ± floor(tolerance * k) is sent as it is; more is cut
///    to exactly k among the candidates; fewer falls back to an exact top-k
///    (topk's selection). Either refinement sends exactly the top k (ties to
///    the lower index), and the last threshold used is kept per bucket.
///
/// Payload (gather-only; see detail/sparse_payload.hpp):
///
///     header  codec dgc, param = bits of density (float), count = n,
///             aux = c (pairs sent, at most min(n, k + slack))
///     c x u32 indices, strictly increasing, < n
///     c x f32 values
///
/// 24 + 8c bytes; max_encoded_bytes(n) = 24 + 8 min(n, k + floor(tolerance k)).
///
/// State: the per-bucket thresholds (save/load). They only steer how many
/// values pass the filter, so encode updates them as it goes (also in
/// encode_residual); a step that is later abandoned leaves a threshold that
/// the next step refines if it is off.
///
/// Edge policy as topk: NaN or ±Inf raises errc::non_finite; ±0, denormals
/// and ±FLT_MAX are ordinary values; at most 2^32 values per bucket.

#include <terse/compress/detail/dgc_state.hpp>
#include <terse/compress/detail/sparse_payload.hpp>
#include <terse/compress/detail/sparse_select.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <ostream>

namespace terse::compress {

struct dgc {
  static constexpr aggregation aggregation_kind = aggregation::gather_only;
  static constexpr wire::codec_id id = wire::codec_id::dgc;

  /// Target fraction of values sent, in (0, 1]; k = ceil(density * n).
  float density = 0.01f;
  /// Counts within k ± floor(tolerance * k) are sent unrefined; in [0, 1).
  float tolerance = 0.2f;
  /// Fraction of values sampled to estimate the threshold, in (0, 1]
  /// (at least 1024 samples, or n when smaller).
  float sample_fraction = 0.001f;
  /// Start from the bucket's last threshold instead of sampling.
  bool reuse_threshold = true;
  /// Per-bucket thresholds (the codec's state; see save/load).
  detail::dgc_thresholds thresholds{};
  /// Buffers reused across calls (not a setting).
  detail::sparse_workspace scratch{};

  /// The target count k for n values.
  std::size_t pairs(std::size_t n) const
  {
    check_settings();
    return static_cast<std::size_t>(detail::topk_count(density, n));
  }

  /// The largest count sent for n values: min(n, k + floor(tolerance k)).
  std::size_t max_pairs(std::size_t n) const
  {
    const std::size_t k = pairs(n);
    return std::min<std::size_t>(n, k + static_cast<std::size_t>(detail::dgc_slack(k, tolerance)));
  }

  std::size_t max_encoded_bytes(std::size_t n) const
  {
    return wire::header_bytes + static_cast<std::size_t>(detail::sparse_body_bytes(max_pairs(n)));
  }

  /// Writes the payload for `in`, returns its size (24 + 8c).
  std::size_t encode(const codec_context& ctx, host_span<const float> in, host_span<std::byte> out)
  {
    return encode_impl(ctx, detail::plain_values{in.data()}, in.size(), out);
  }

  /// Codes p = g + e_old and writes e_new = p with the sent coordinates
  /// zeroed. e_new may alias g or e_old.
  std::size_t encode_residual(const codec_context& ctx, host_span<const float> g, host_span<const float> e_old,
                              host_span<float> e_new, host_span<std::byte> out)
  {
    TERSE_EXPECTS(g.size() == e_old.size() && g.size() == e_new.size(),
                  "dgc encode_residual needs g, e_old and e_new of one size");
    const std::size_t used =
        encode_impl(ctx, detail::residual_values{g.data(), e_old.data(), e_new.data()}, g.size(), out);
    const std::size_t c = (used - wire::header_bytes) / 8;
    const std::byte* indices = detail::sparse_indices(out.data());
    for (std::size_t j = 0; j < c; ++j) {
      e_new[wire::load<std::uint32_t>(indices + 4 * j)] = 0.0f;
    }
    return used;
  }

  /// Validates the payload (header, density in (0, 1], at most n pairs,
  /// length, ascending in-range indices, finite values), then adds it.
  void decode_add(const codec_context&, host_span<const std::byte> payload, host_span<float> accumulator) const
  {
    const std::uint64_t n = accumulator.size();
    const auto view = detail::validate_sparse_payload(
        payload, id, n, [n](std::uint32_t param, std::uint64_t count) { return header_verdict(param, count, n); });
    detail::add_sparse_body(view, accumulator);
  }

  /// Whether a header's parameter (density bits) is usable; any count up
  /// to n is (the band depends on the sender's tolerance).
  static detail::sparse_header_verdict header_verdict(std::uint32_t param, std::uint64_t, std::uint64_t)
  {
    return {detail::valid_density(detail::bits_float(param)), 0};
  }

  void save(state_writer& out) const { thresholds.save(out); }
  void load(state_reader& in) { thresholds.load(in); }

  friend std::ostream& operator<<(std::ostream& os, const dgc& c)
  {
    return os << "dgc{density=" << c.density << ", tolerance=" << c.tolerance
              << ", sample_fraction=" << c.sample_fraction << ", reuse_threshold=" << c.reuse_threshold << "}";
  }

 private:
  void check_settings() const
  {
    TERSE_EXPECTS(detail::valid_density(density), "dgc density must lie in (0, 1]");
    TERSE_EXPECTS(detail::valid_tolerance(tolerance), "dgc tolerance must lie in [0, 1)");
    TERSE_EXPECTS(sample_fraction > 0.0f && sample_fraction <= 1.0f, "dgc sample_fraction must lie in (0, 1]");
  }

  /// The threshold estimated from a random sample: the magnitude key ranked
  /// ceil(k m / n) among m sampled values.
  template <class Source>
  std::uint32_t sampled_threshold(const codec_context& ctx, const Source& source, std::size_t n, std::size_t k)
  {
    const auto m = static_cast<std::size_t>(detail::dgc_sample_size(n, sample_fraction));
    if (scratch.sample.size() < m) {
      scratch.sample.resize(m);
    }
    // Positions first, then the gather: independent loads keep many cache
    // misses in flight (measured 2-3x faster than one fused loop).
    const random_stream stream = ctx.private_stream();
    for (std::size_t j = 0; j < m; ++j) {
      scratch.sample[j] = static_cast<std::uint32_t>(detail::sample_position(stream.bits(j), n));  // < n <= 2^32
    }
    for (std::size_t j = 0; j < m; ++j) {
      scratch.sample[j] = detail::magnitude_key(source.at(scratch.sample[j]));
    }
    const auto rank = static_cast<std::size_t>(detail::dgc_sample_rank(k, m, n));
    const std::uint32_t key = detail::kth_largest(scratch.sample.data(), m, rank);
    return std::clamp<std::uint32_t>(key, 1u, detail::non_finite_key);
  }

  template <class Source>
  std::size_t encode_impl(const codec_context& ctx, const Source& source, std::size_t n, host_span<std::byte> out)
  {
    const std::size_t k = pairs(n);
    const std::size_t slack = static_cast<std::size_t>(detail::dgc_slack(k, tolerance));
    detail::check_sparse_encode_args(n, out.size(), max_encoded_bytes(n), "dgc");
    std::size_t c = 0;
    std::byte* indices = detail::sparse_indices(out.data());
    if (k == n) {
      c = n;
      detail::select_all(source, n, indices, detail::sparse_values(out.data(), c), "dgc");
    } else if (k > 0) {
      const auto kept = thresholds.find(ctx.bucket);
      // A kept threshold (perhaps loaded) is clamped like a sampled one, so
      // NaN and Inf always pass the filter.
      const std::uint32_t threshold = reuse_threshold && kept
                                          ? std::clamp<std::uint32_t>(*kept, 1u, detail::non_finite_key)
                                          : sampled_threshold(ctx, source, n, k);
      scratch.count = 0;
      // A threshold that lets through more than 4 (k + slack) values (a
      // kept one that error feedback has outgrown: the unsent mass
      // accumulates) is abandoned mid-pass for a fresh sampled top-k: one
      // more read pass instead of collecting and ranking millions.
      const std::size_t give_up = 4 * (k + slack);
      const bool finished = source.first_pass(scratch, n, threshold, give_up);
      detail::check_candidates_finite(scratch, "dgc");
      std::uint32_t next = threshold;
      if (!finished) {
        c = k;
        next = detail::select_top_k(source, n, k, scratch, indices, detail::sparse_values(out.data(), k), "dgc");
      } else if (scratch.count + slack >= k && scratch.count <= k + slack) {
        c = scratch.count;  // close enough: send what passed
        if (c != 0) {
          std::memcpy(indices, scratch.index(), 4 * c);
          std::memcpy(detail::sparse_values(out.data(), c), scratch.bits(), 4 * c);
        }
      } else if (scratch.count > k) {
        c = k;  // too many: exactly the top k among them
        const detail::selection_cut cut = detail::cut_candidates(scratch, k);
        detail::emit_cut(scratch, cut, k, indices, detail::sparse_values(out.data(), k));
        next = cut.key;
      } else {
        c = k;  // too few: an exact top-k over the values (p, once written)
        next = detail::select_top_k(detail::plain_values{source.values()}, n, k, scratch, indices,
                                    detail::sparse_values(out.data(), k), "dgc");
      }
      thresholds.set(ctx.bucket, std::max<std::uint32_t>(next, 1u));
    }
    detail::write_sparse_header(out, id, density, n, c);
    return wire::header_bytes + static_cast<std::size_t>(detail::sparse_body_bytes(c));
  }
};

}  // namespace terse::compress

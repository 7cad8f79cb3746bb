#pragma once
// Small, exact codecs of each aggregation kind, written for the collective's
// tests so its three paths are checked independently of the real codecs.

#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace test_codecs {

inline void refuse_non_finite(terse::host_span<const float> in)
{
  for (float v : in) {
    TERSE_CHECK(std::isfinite(v), terse::errc::non_finite, "test codec input is not finite");
  }
}

/// Requantizable: rounds to a grid of `step` (to nearest), 4 bytes per value
/// as int32. Exact for values on the grid. `corrupt_rank` writes a bad
/// header on that rank, to test malformed payloads.
struct grid {
  static constexpr terse::aggregation aggregation_kind = terse::aggregation::requantizable;
  static constexpr terse::wire::codec_id id = terse::wire::codec_id::uniform;
  float step = 0.25f;
  int corrupt_rank = -1;

  std::size_t max_encoded_bytes(std::size_t n) const { return terse::wire::header_bytes + 4 * n; }
  std::size_t encode(const terse::codec_context& ctx, terse::host_span<const float> in,
                     terse::host_span<std::byte> out) const
  {
    refuse_non_finite(in);
    terse::wire::write_header(out, {id, 0, in.size(), 0});
    for (std::size_t i = 0; i < in.size(); ++i) {
      terse::wire::store(out.data() + 24 + 4 * i, static_cast<std::int32_t>(std::lround(in[i] / step)));
    }
    if (ctx.rank == corrupt_rank && ctx.phase == 0) {
      out[0] = std::byte{0};  // bad magic
    }
    return max_encoded_bytes(in.size());
  }
  void decode_add(const terse::codec_context&, terse::host_span<const std::byte> payload,
                  terse::host_span<float> acc) const
  {
    terse::wire::read_header(payload, id, acc.size());
    terse::wire::expect_length(payload, max_encoded_bytes(acc.size()), id);
    for (std::size_t i = 0; i < acc.size(); ++i) {
      acc[i] += static_cast<float>(terse::wire::load<std::int32_t>(payload.data() + 24 + 4 * i)) * step;
    }
  }
};

/// The grid codec with the fused residual pass, so the collective's fused
/// path can be compared with the compensate/commit path.
struct fused_grid : grid {
  std::size_t encode_residual(const terse::codec_context& ctx, terse::host_span<const float> g,
                              terse::host_span<const float> e_old, terse::host_span<float> e_new,
                              terse::host_span<std::byte> out) const
  {
    std::vector<float> p(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) {
      p[i] = g[i] + e_old[i];
    }
    const std::size_t bytes = encode(ctx, terse::host_span<const float>(p), out);
    for (std::size_t i = 0; i < g.size(); ++i) {
      e_new[i] = p[i] - static_cast<float>(std::lround(p[i] / step)) * step;
    }
    return bytes;
  }
};

/// Gather-only: (index, value) pairs of the nonzero values. Exact.
struct nonzeros {
  static constexpr terse::aggregation aggregation_kind = terse::aggregation::gather_only;
  static constexpr terse::wire::codec_id id = terse::wire::codec_id::threshold;
  int corrupt_rank = -1;

  std::size_t max_encoded_bytes(std::size_t n) const { return terse::wire::header_bytes + 8 * n; }
  std::size_t encode(const terse::codec_context& ctx, terse::host_span<const float> in,
                     terse::host_span<std::byte> out) const
  {
    refuse_non_finite(in);
    std::size_t k = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (in[i] != 0.0f) {
        terse::wire::store(out.data() + 24 + 8 * k, static_cast<std::uint32_t>(i));
        terse::wire::store(out.data() + 28 + 8 * k, in[i]);
        ++k;
      }
    }
    terse::wire::write_header(out, {id, 0, in.size(), k});
    if (ctx.rank == corrupt_rank) {
      terse::wire::store(out.data() + 16, std::uint64_t{k + 1});  // claims one pair too many
    }
    return terse::wire::header_bytes + 8 * k;
  }
  void decode_add(const terse::codec_context&, terse::host_span<const std::byte> payload,
                  terse::host_span<float> acc) const
  {
    const auto h = terse::wire::read_header(payload, id, acc.size());
    TERSE_CHECK(h.aux <= acc.size(), terse::errc::malformed_payload, "too many pairs");
    terse::wire::expect_length(payload, terse::wire::header_bytes + 8 * h.aux, id);
    for (std::size_t k = 0; k < h.aux; ++k) {
      const auto i = terse::wire::load<std::uint32_t>(payload.data() + 24 + 8 * k);
      TERSE_CHECK(i < acc.size(), terse::errc::malformed_payload, "index out of range");
    }
    for (std::size_t k = 0; k < h.aux; ++k) {
      acc[terse::wire::load<std::uint32_t>(payload.data() + 24 + 8 * k)] +=
          terse::wire::load<float>(payload.data() + 28 + 8 * k);
    }
  }
};

/// Summable: rides the allreduce as floats, but drops the low `drop` bits of
/// the mantissa (lossy, so feedback has something to keep).
struct truncating {
  static constexpr terse::aggregation aggregation_kind = terse::aggregation::summable;
  static constexpr terse::wire::codec_id id = terse::wire::codec_id::identity;
  using wire_type = float;
  int drop = 0;

  static float truncate(float v, int bits)
  {
    std::uint32_t b;
    std::memcpy(&b, &v, 4);
    b &= ~((1u << bits) - 1u);
    std::memcpy(&v, &b, 4);
    return v;
  }
  std::size_t wire_count(std::size_t n) const { return n; }
  void encode_values(const terse::codec_context&, terse::host_span<const float> in, terse::host_span<float> wire) const
  {
    refuse_non_finite(in);
    for (std::size_t i = 0; i < in.size(); ++i) {
      wire[i] = truncate(in[i], drop);
    }
  }
  void decode_values(const terse::codec_context&, terse::host_span<const float> wire, terse::host_span<float> out) const
  {
    std::copy(wire.begin(), wire.end(), out.begin());
  }
  std::size_t max_encoded_bytes(std::size_t n) const { return terse::wire::header_bytes + 4 * n; }
  std::size_t encode(const terse::codec_context& ctx, terse::host_span<const float> in,
                     terse::host_span<std::byte> out) const
  {
    terse::wire::write_header(out, {id, 0, in.size(), 0});
    encode_values(ctx, in, terse::host_span<float>(reinterpret_cast<float*>(out.data() + 24), in.size()));
    return max_encoded_bytes(in.size());
  }
  void decode_add(const terse::codec_context&, terse::host_span<const std::byte> payload,
                  terse::host_span<float> acc) const
  {
    terse::wire::read_header(payload, id, acc.size());
    terse::wire::expect_length(payload, max_encoded_bytes(acc.size()), id);
    for (std::size_t i = 0; i < acc.size(); ++i) {
      acc[i] += terse::wire::load<float>(payload.data() + 24 + 4 * i);
    }
  }
};

}  // namespace test_codecs

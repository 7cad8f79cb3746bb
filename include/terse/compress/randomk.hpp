#pragma once
/// @file
/// `compress::randomk`: random-k sparsification with a shared seed (Stich,
/// Cordonnier, Jaggi: "Sparsified SGD with Memory", NeurIPS 2018; Wangni
/// et al. 2018). k = ceil(density * n) indices are drawn from
/// ctx.shared_stream() (seed, step, bucket), so every rank picks the SAME
/// indices and none are sent; only the k values travel. The encoded values
/// of all ranks therefore add up coordinate by coordinate: the codec is
/// SUMMABLE and rides a plain allreduce of k floats per bucket.
///
/// The set is a uniformly random k-subset of [0, n) (Floyd's algorithm, see
/// detail/randomk_sampler.hpp), sorted ascending: every index is chosen
/// with probability k/n. With `unbiased` (the default) the values are
/// scaled by n/k, so E[decode(v)] = v; without it they are sent as they
/// are, the biased but contractive (||v - decode(v)||^2 <= (1 - k/n) ||v||^2
/// in expectation) random-k that error-feedback analyses assume. Note that
/// with `unbiased`, residual feedback keeps e = p (1 - n/k) at the chosen
/// coordinates, which grows the residual; pair feedback with
/// `unbiased = false`.
///
/// Typed values (summable path): wire_count(n) = k floats, value m =
/// v[idx_m] * scale. Byte payload (param = 1 if unbiased else 0, aux = k):
///
///     offset size  field
///     0      4k    value m of index idx_m, float32 LE, in index order
///
/// Edge policy: NaN or +-Inf anywhere in the input raises errc::non_finite
/// (a streaming read of the input, the only O(n) work of encode; a
/// non-finite value that is not sent would still poison a residual). A
/// scaled value beyond FLT_MAX saturates to +-FLT_MAX, so finite input
/// never puts Inf on the wire. n = 0 gives k = 0 (header only); n >= 1
/// gives 1 <= k <= n. ctx.offset is not used: random-k codes whole buckets.
/// The decoder refuses a non-finite value, a length other than 24 + 4k,
/// and a k or scaling flag other than its own.
///
/// The instance caches each bucket's index set for the step (see
/// `indices`), so it is cheap to encode and decode one step, and is not
/// thread-safe: use one instance per thread.

#include <terse/compress/detail/randomk_math.hpp>
#include <terse/compress/detail/randomk_sampler.hpp>
#include <terse/compress/detail/signs_common.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>

namespace terse::compress {

struct randomk {
  static constexpr aggregation aggregation_kind = aggregation::summable;
  static constexpr wire::codec_id id = wire::codec_id::randomk;
  using wire_type = float;

  /// Fraction of values sent, 0 < density <= 1.
  double density = 0.01;
  /// Scale the sent values by n/k so that decode is unbiased.
  bool unbiased = true;
  /// Internal, not configuration: the index sets of recent steps.
  detail::randomk_index_cache cache{};

  /// k = ceil(density * n) (see detail::randomk_count): the values sent.
  std::size_t wire_count(std::size_t n) const
  {
    check_config();
    return detail::randomk_count(n, density);
  }

  /// Exact payload size: 24 + 4k bytes.
  std::size_t max_encoded_bytes(std::size_t n) const { return wire::header_bytes + 4 * wire_count(n); }

  /// The factor values are multiplied by: fl32(n/k), or 1.
  float scale(std::size_t n) const { return detail::randomk_scale(n, wire_count(n), unbiased); }

  /// The k sorted indices this context (seed, step, bucket) chooses among n
  /// values; the same on every rank. Valid until the next call for the
  /// same bucket id.
  host_span<const std::uint64_t> indices(const codec_context& ctx, std::size_t n)
  {
    return cache.indices(ctx, n, wire_count(n));
  }

  /// wire[m] = in[idx_m] * scale; wire.size() must be wire_count(n).
  void encode_values(const codec_context& ctx, host_span<const float> in, host_span<float> wire)
  {
    const std::size_t n = in.size();
    TERSE_EXPECTS(wire.size() == wire_count(n), "randomk::encode_values needs wire_count(n) values");
    check_finite(in.data(), n);
    const auto idx = indices(ctx, n);
    const float s = scale(n);
    for (std::size_t m = 0; m < idx.size(); ++m) {
      wire[m] = detail::randomk_value(in[idx[m]], s);
    }
  }

  /// out = 0 except out[idx_m] = wire[m] (overwrites out).
  void decode_values(const codec_context& ctx, host_span<const float> wire, host_span<float> out)
  {
    const std::size_t n = out.size();
    TERSE_EXPECTS(wire.size() == wire_count(n), "randomk::decode_values needs wire_count(n) values");
    const auto idx = indices(ctx, n);
    std::fill(out.begin(), out.end(), 0.0f);
    for (std::size_t m = 0; m < idx.size(); ++m) {
      out[idx[m]] = wire[m];
    }
  }

  /// Header + the k values; returns the bytes written (max_encoded_bytes).
  std::size_t encode(const codec_context& ctx, host_span<const float> in, host_span<std::byte> out)
  {
    const std::size_t n = in.size();
    const std::size_t bytes = prepare(n, out);
    check_finite(in.data(), n);
    const auto idx = indices(ctx, n);
    const float s = scale(n);
    std::byte* body = out.data() + wire::header_bytes;
    for (std::size_t m = 0; m < idx.size(); ++m) {
      wire::store(body + 4 * m, detail::randomk_value(in[idx[m]], s));
    }
    return bytes;
  }

  /// Fused error feedback: codes p = g + e_old and writes e_new = p -
  /// decode(p): p everywhere except p - value at the chosen coordinates.
  /// Bit-identical to encode(p), decode_values and a subtraction. `e_new`
  /// may alias `e_old`.
  std::size_t encode_residual(const codec_context& ctx, host_span<const float> g, host_span<const float> e_old,
                              host_span<float> e_new, host_span<std::byte> out)
  {
    const std::size_t n = g.size();
    TERSE_EXPECTS(e_old.size() == n && e_new.size() == n,
                  "randomk::encode_residual needs g, e_old and e_new of one size");
    const std::size_t bytes = prepare(n, out);
    std::uint32_t bad = 0;  // detail::all_finite's test, fused into the one dense pass
    for (std::size_t i = 0; i < n; ++i) {
      const float p = g[i] + e_old[i];
      e_new[i] = p;
      bad |= (detail::float_bits(p) & 0x7fffffffu) + 0x00800000u;
    }
    TERSE_CHECK((bad & 0x80000000u) == 0, errc::non_finite, "randomk: input holds NaN or Inf");
    const auto idx = indices(ctx, n);
    const float s = scale(n);
    std::byte* body = out.data() + wire::header_bytes;
    for (std::size_t m = 0; m < idx.size(); ++m) {
      const float p = e_new[idx[m]];
      const float w = detail::randomk_value(p, s);
      wire::store(body + 4 * m, w);
      e_new[idx[m]] = p - w;
    }
    return bytes;
  }

  /// Validates `payload` (header, k, flag, exact length, finite values),
  /// then acc[idx_m] += value m.
  void decode_add(const codec_context& ctx, host_span<const std::byte> payload, host_span<float> acc)
  {
    const std::size_t n = acc.size();
    const std::size_t k = wire_count(n);
    const wire::header h = wire::read_header(payload, id, n);
    TERSE_CHECK(h.param == flag(), errc::malformed_payload,
                "randomk payload scaling flag " + std::to_string(h.param) + " differs from the receiver's " +
                    std::to_string(flag()));
    TERSE_CHECK(h.aux == k, errc::malformed_payload,
                "randomk payload carries k = " + std::to_string(h.aux) + "; the receiver expects " + std::to_string(k));
    wire::expect_length(payload, wire::checked_add(wire::header_bytes, wire::checked_mul(k, 4)), id);
    const std::byte* body = payload.data() + wire::header_bytes;
    TERSE_CHECK(detail::all_finite(body, k), errc::malformed_payload, "randomk payload holds a non-finite value");
    const auto idx = indices(ctx, n);
    for (std::size_t m = 0; m < k; ++m) {
      acc[idx[m]] += wire::load<float>(body + 4 * m);
    }
  }

  friend std::ostream& operator<<(std::ostream& os, const randomk& c)
  {
    return os << "randomk{density=" << c.density << ", unbiased=" << c.unbiased << '}';
  }

 private:
  void check_config() const { TERSE_EXPECTS(density > 0.0 && density <= 1.0, "randomk needs 0 < density <= 1"); }
  std::uint32_t flag() const { return unbiased ? 1u : 0u; }

  static void check_finite(const float* data, std::size_t n)
  {
    TERSE_CHECK(detail::all_finite(data, n), errc::non_finite, "randomk: input holds NaN or Inf");
  }

  std::size_t prepare(std::size_t n, host_span<std::byte> out) const
  {
    const std::size_t bytes = max_encoded_bytes(n);
    TERSE_EXPECTS(out.size() >= bytes, "randomk needs max_encoded_bytes(n) bytes of output");
    wire::write_header(out, {.codec = id, .param = flag(), .count = n, .aux = wire_count(n)});
    return bytes;
  }
};

}  // namespace terse::compress

#pragma once
/// @file
/// `compress::powersgd`: rank-r PowerSGD (Vogels, Karimireddy, Jaggi,
/// "PowerSGD: Practical Low-Rank Gradient Compression for Distributed
/// Optimization", NeurIPS 2019), one power-iteration step per call with a
/// warm-started Q per matrix.
///
/// **Per tensor** (ctx.tensors set: the layout declares tensor shapes, see
/// layout::set_shapes): each matrix tensor is M with its own shape (rows ×
/// cols, k = min(rank, rows, cols)) and its own Q; vectors, and matrices
/// whose factors would not be smaller, travel dense and come back as the
/// exact average. `reduce` still makes two allreduces per segment (every P,
/// dense value and the flag; every Q). Payload and state formats:
/// detail/powersgd_tensor_steps.hpp and detail/powersgd_tensors.hpp.
///
/// **Fallback** (no shapes): a bucket of n values is viewed as an m×p
/// row-major matrix M with p = ⌈√n⌉, m = ⌈n/p⌉, the last row zero-padded
/// (compress::powersgd_shape); the rank used is k = min(rank, m). One step,
/// for every rank of the world:
///
///     Q̂ = Q with unit columns (a zero column is re-drawn from the shared stream)
///     P = M·Q̂;  P ← average of P over ranks;  P̂ = orthonormalise(P)
///     Q = Mᵀ·P̂;  Q ← average of Q over ranks
///     decoded = P̂·Qᵀ (the rank-k approximation of the average M); keep Q
///
/// Normalising Q's columns is a deviation from the paper that changes
/// nothing in exact arithmetic (Gram–Schmidt ignores positive column scales)
/// and keeps P at the magnitude of M instead of its square, so tiny or large
/// gradients neither underflow nor overflow. Orthonormalisation is modified
/// Gram–Schmidt in double with a second pass; a zero or dependent column of
/// P becomes zero, so its Q column is zero and is re-drawn next step.
///
/// **Collective use** (`reduce`, the summable path): the codec runs its own
/// two allreduces (average) of P (m·k values plus one flag) and Q (p·k
/// values) on any terse transport and replaces the values with the rank-k
/// average: 4(k(m+p)+1) bytes per rank and step instead of 4n. Residual
/// feedback is the caller's, e = M − decoded.
///
/// **Byte interface** (gossip, debugging): `encode` writes this rank's own
/// factors (no communication); `decode_add` adds P·Qᵀ, `decode` writes it.
/// Fallback payload:
///
///     header: codec powersgd, param = k, count = n, aux = m << 32 | p
///     body:   P (m×k, row-major f32), then Q column by column (Qᵀ, k×p
///             row-major f32): 4k(m+p) bytes
///
/// Edge policy:
/// - NaN or ±Inf in the values: `encode` throws errc::non_finite and keeps
///   its state. `reduce` still takes part in both allreduces (peers must not
///   hang) with a flag in the P allreduce; when any rank flagged, every rank
///   throws errc::non_finite after the second allreduce, with Q and the
///   values unchanged.
/// - Finite values too large for float products (the averaged P or Q, or the
///   decoded values, would overflow: |M| beyond about FLT_MAX/√n): `reduce`
///   throws errc::non_finite on every rank alike (the averaged factors are
///   identical everywhere), Q and values unchanged. `encode` handles any
///   finite input: beyond 2^40 it works on a copy scaled by a power of two
///   and, if the factors of the true values would overflow, shrinks Q rows
///   so that max‖P_i‖·max‖Q_j‖ ≤ FLT_MAX/4 (saturation).
/// - `decode_add` / `decode` reject (errc::malformed_payload, output untouched) a wrong
///   header, shape or rank, a wrong length, a non-finite factor, and factors
///   with max‖P_i‖·max‖Q_j‖ > FLT_MAX/2 (which could decode to Inf).
/// - n = 0: header-only payload; `reduce` returns at once (all ranks share
///   the layout, so none communicates). Small n: k = min(rank, m) (n = 1:
///   one 1×1 factor each, exact).
/// - A bucket id keeps one n and rank; another is errc::invalid_argument.
///
/// The host products go through BLAS (`Blas`, OpenBLAS's cblas_sgemm by
/// default): link terse::blas. Without it this header still compiles, and
/// using the codec fails to compile with a message saying so. The device
/// twin (cuBLAS, same step, policy and saved-state layout) is
/// cuda::powersgd_state in terse/cuda/powersgd.cuh.

#include <terse/compress/detail/powersgd_host.hpp>
#include <terse/compress/detail/powersgd_math.hpp>
#include <terse/compress/detail/powersgd_matrix.hpp>
#include <terse/compress/detail/powersgd_state.hpp>
#include <terse/compress/detail/powersgd_tensor_steps.hpp>
#include <terse/compress/powersgd_shape.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/verbs.hpp>
#include <terse/detail/host_blas.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace terse::compress {

/// @tparam Blas the host matrix products: `static constexpr bool available`
///         and `static void gemm(...)` as detail::host_blas.
template <class Blas = detail::host_blas>
struct basic_powersgd {
  static constexpr aggregation aggregation_kind = aggregation::summable;
  static constexpr wire::codec_id id = wire::codec_id::powersgd;

  /// Rank r of the approximation (at least 1); a declared matrix uses
  /// min(r, rows, cols), a fallback bucket min(r, m).
  std::uint32_t rank = 2;

  /// Warm-start Q and scratch per bucket. Internal: use save/load.
  detail::powersgd_host_state state{};

  /// The matrix a run of n values without declared shapes is viewed as at
  /// this rank (the fallback).
  powersgd_shape shape(std::size_t n) const noexcept { return detail::powersgd_shape_of(n, rank); }

  /// The matrix and rank of each tensor ctx.tensors declares; a tensor sent
  /// dense has k = 0 (and m = p = 0). errc::invalid_argument for an invalid
  /// shape.
  std::vector<powersgd_shape> shapes(const codec_context& ctx) const
  {
    const detail::powersgd_plan plan =
        detail::make_powersgd_plan(ctx.tensors, rank, detail::powersgd_values_in(ctx.tensors));
    std::vector<powersgd_shape> out;
    for (const auto& piece : plan.pieces) {
      out.push_back(piece.shape);
    }
    return out;
  }

  /// The payload size for n values without declared shapes: exactly
  /// 24 + 4k(m + p) bytes. With declared shapes use encoded_bytes.
  std::size_t max_encoded_bytes(std::size_t n) const noexcept
  {
    return wire::header_bytes + sizeof(float) * shape(n).factor_count();
  }

  /// Exactly the payload size for n values coded with `ctx` (its tensor
  /// shapes, if any): 24 + 24T + 4(Σ k(rows + cols) + Σ dense values) bytes
  /// for T declared tensors.
  std::size_t encoded_bytes(const codec_context& ctx, std::size_t n) const
  {
    return ctx.tensors.empty() ? max_encoded_bytes(n)
                               : detail::make_powersgd_plan(ctx.tensors, rank, n).payload_bytes();
  }

  /// Sets the warm-start Q (cols×k, row-major; k = min(rank, rows, cols)) of
  /// matrix `tensor` of the segment ctx describes (ctx.bucket, ctx.tensors),
  /// creating its state (the other tensors' Q drawn from
  /// ctx.shared_stream()) if it has none. Call it alike on every rank.
  /// errc::invalid_argument, state unchanged, when ctx declares no shapes,
  /// the tensor is out of range or travels dense, q has another size or
  /// holds NaN or Inf.
  void set_initial_q(const codec_context& ctx, std::size_t tensor, host_span<const float> q)
  {
    check_usable();
    detail::powersgd_set_initial_q(state, rank, ctx, tensor, q);
  }

  /// Writes this rank's own factors P̂ and Q (one warm-started power step,
  /// no communication) and keeps Q for the bucket's next step.
  std::size_t encode(const codec_context& ctx, host_span<const float> in, host_span<std::byte> out)
  {
    check_usable();
    if (!ctx.tensors.empty()) {
      return detail::powersgd_encode_tensors<Blas>(state, rank, ctx, in, out);
    }
    const detail::powersgd_shape s = shape(in.size());
    const std::size_t bytes = max_encoded_bytes(in.size());
    TERSE_EXPECTS(out.size() >= bytes, "powersgd needs max_encoded_bytes(n) = " + std::to_string(bytes) +
                                           " bytes of output, got " + std::to_string(out.size()));
    wire::write_header(
        out,
        {.codec = id, .param = static_cast<std::uint32_t>(s.k), .count = s.n, .aux = s.n == 0 ? 0 : s.shape_word()});
    if (s.n == 0) {
      return bytes;
    }
    detail::powersgd_new_bucket_guard created(state, ctx.bucket);
    detail::powersgd_bucket& b = state.bucket(ctx.bucket, s, ctx.shared_stream());
    detail::powersgd_encode_matrix<Blas>(in.data(), s, b, state.scaled, ctx.shared_stream(), 0,
                                         out.data() + wire::header_bytes);
    std::swap(b.q, b.q_next);  // Q's direction is what carries over; its scale does not matter
    created.keep();
    return bytes;
  }

  /// Validates the payload completely, then acc += P·Qᵀ (dense tensors: acc += values).
  void decode_add(const codec_context& ctx, host_span<const std::byte> payload, host_span<float> acc)
  {
    decode_into(ctx, payload, acc, true);
  }

  /// Validates the payload completely, then out = P·Qᵀ (dense tensors: their
  /// values, bit for bit, −0 included). On a malformed payload `out` is untouched.
  void decode(const codec_context& ctx, host_span<const std::byte> payload, host_span<float> out)
  {
    decode_into(ctx, payload, out, false);
  }

  /// One PowerSGD step across the ranks of `t`: replaces `values` (this
  /// rank's M, already error-compensated) with the rank-k approximation of
  /// the average of every rank's M, identical on all ranks. Calls
  /// `t.allreduce(span, reduce_op::average)` twice (P and a flag, then Q).
  /// Every rank must call it with the same bucket and size.
  template <class Transport>
  void reduce(const codec_context& ctx, Transport& t, host_span<float> values)
  {
    check_usable();
    const auto run = [&] {
      const host_span<float> first = reduce_first(ctx, values);
      if (first.empty()) {
        return;  // nothing to send (n = 0): every rank shares the layout, so none communicates
      }
      t.allreduce(first, reduce_op::average);
      const host_span<float> second = reduce_second(ctx, values);
      if (!second.empty()) {
        t.allreduce(second, reduce_op::average);
      }
      reduce_last(ctx, values);
    };
    if (!ctx.tensors.empty()) {
      detail::powersgd_new_group_guard created(state.groups, ctx.bucket);
      run();
      created.keep();
    } else {
      detail::powersgd_new_bucket_guard created(state, ctx.bucket);
      run();
      created.keep();
    }
  }

  /// `reduce` in the three parts a collective runs between its own
  /// exchanges, so the step's two averages can overlap other work; the same
  /// step and bits as `reduce` when each returned span is averaged in place
  /// (reduce_op::average over the ranks, in rank order). `reduce_first`
  /// returns P and the flag (empty: nothing to exchange, and nothing to
  /// call next); once that is averaged, `reduce_second` returns Q (empty:
  /// nothing to average); once that is, `reduce_last` writes the values
  /// (errc::non_finite on every rank alike, values and Q unchanged, as for
  /// `reduce`). `values` is the same buffer throughout. A step abandoned
  /// between the parts may leave a segment seen for the first time: restore
  /// the codec with save/load (terse::allreduce does).
  host_span<float> reduce_first(const codec_context& ctx, host_span<const float> values)
  {
    check_usable();
    if (!ctx.tensors.empty()) {
      return detail::powersgd_tensors_first<Blas>(state, rank, ctx, values);
    }
    const detail::powersgd_shape s = shape(values.size());
    if (s.n == 0) {
      return {};
    }
    detail::powersgd_bucket& b = state.bucket(ctx.bucket, s, ctx.shared_stream());
    detail::normalise_columns(b.q.data(), b.q_hat.data(), s.p, s.k, ctx.shared_stream());
    const std::size_t flag_at = s.m * s.k;
    float* p = b.p.data();
    const bool finite =
        detail::powersgd_multiply_p<Blas>(values.data(), s, b.q_hat.data(), p) < detail::first_non_finite_bits;
    if (!finite) {
      std::fill(p, p + flag_at, 0.0f);
    }
    p[flag_at] = finite ? 0.0f : 1.0f;
    return host_span<float>(p, flag_at + 1);
  }

  /// See reduce_first.
  host_span<float> reduce_second(const codec_context& ctx, host_span<const float> values)
  {
    if (!ctx.tensors.empty()) {
      return detail::powersgd_tensors_second<Blas>(state, rank, ctx, values);
    }
    const detail::powersgd_shape s = shape(values.size());
    detail::powersgd_bucket& b = state.bucket(ctx.bucket, s, ctx.shared_stream());
    // Every rank sees the same averaged P and flag, so all decide alike.
    float* p = b.p.data();
    const bool flagged = p[s.m * s.k] != 0.0f;
    b.factors_ok = !flagged && detail::orthonormalise_columns(p, s.m, s.k, b.work.data());
    if (b.factors_ok) {
      detail::powersgd_multiply_q<Blas>(values.data(), s, p, b.q_next.data());
    } else {
      std::fill(b.q_next.begin(), b.q_next.end(), 0.0f);  // still take part, so no peer hangs
    }
    return host_span<float>(b.q_next);
  }

  /// See reduce_first.
  void reduce_last(const codec_context& ctx, host_span<float> values)
  {
    if (!ctx.tensors.empty()) {
      detail::powersgd_tensors_last<Blas>(state, rank, ctx, values);
      return;
    }
    const detail::powersgd_shape s = shape(values.size());
    detail::powersgd_bucket& b = state.bucket(ctx.bucket, s, ctx.shared_stream());
    const float* p = b.p.data();
    TERSE_CHECK(p[s.m * s.k] == 0.0f, errc::non_finite, "powersgd reduce: a rank's values hold NaN or Inf");
    TERSE_CHECK(b.factors_ok &&
                    detail::max_magnitude_bits(b.q_next.data(), b.q_next.size()) < detail::first_non_finite_bits &&
                    detail::max_row_norm(p, s.m, s.k) * detail::max_q_row_norm(b.q_next.data(), s.k, s.p) <=
                        detail::powersgd_max_product,
                errc::non_finite, "powersgd reduce: the averaged factors overflow float (values too large)");
    detail::powersgd_multiply_out<Blas>(p, b.q_next.data(), s, 0.0f, values.data());
    std::swap(b.q, b.q_next);
  }

  void save(state_writer& out) const { state.save(out, rank); }
  /// Replaces every bucket's Q with the saved one; errc::io (state kept) when
  /// the blob was saved with another rank or holds a shape this rank does
  /// not give its n.
  void load(state_reader& in) { state.load(in, rank); }

  friend std::ostream& operator<<(std::ostream& os, const basic_powersgd& c)
  {
    return os << "powersgd{rank=" << c.rank << "}";
  }

 private:
  void decode_into(const codec_context& ctx, host_span<const std::byte> payload, host_span<float> acc, bool add)
  {
    check_usable();
    if (!ctx.tensors.empty()) {
      detail::powersgd_decode_tensors<Blas>(state, rank, ctx, payload, acc, add);
      return;
    }
    const detail::powersgd_shape s = shape(acc.size());
    const wire::header h = wire::read_header(payload, id, s.n);
    TERSE_CHECK(h.param == s.k && h.aux == (s.n == 0 ? 0 : s.shape_word()), errc::malformed_payload,
                "powersgd payload has rank " + std::to_string(h.param) + " and shape word " + std::to_string(h.aux) +
                    "; for " + std::to_string(s.n) + " values at rank " + std::to_string(rank) +
                    " the receiver expects " + std::to_string(s.k) + " and " + std::to_string(s.shape_word()) + " (" +
                    std::to_string(s.m) + "x" + std::to_string(s.p) + ")");
    wire::expect_length(
        payload,
        wire::checked_add(wire::header_bytes,
                          wire::checked_mul(sizeof(float), wire::checked_mul(s.k, wire::checked_add(s.m, s.p)))),
        id);
    if (s.n == 0) {
      return;
    }
    state.factors.resize(s.factor_count());
    std::memcpy(state.factors.data(), payload.data() + wire::header_bytes, sizeof(float) * s.factor_count());
    const float* p = state.factors.data();
    const float* qt = p + s.m * s.k;
    detail::powersgd_check_factors(p, qt, s);
    detail::powersgd_multiply_out<Blas>(p, qt, s, add ? 1.0f : 0.0f, acc.data());
  }

  void check_usable() const
  {
    static_assert(Blas::available,
                  "compress::powersgd computes its host matrix products with BLAS: link terse::blas "
                  "(find_package(terse COMPONENTS blas); Debian: apt-get install libopenblas-dev), or without "
                  "CMake define TERSE_WITH_BLAS=1 and link a CBLAS (-lopenblas)");
    TERSE_EXPECTS(rank >= 1, "powersgd needs rank >= 1");
  }
};

/// PowerSGD with OpenBLAS (or the BLAS terse::blas found) on the host.
using powersgd = basic_powersgd<>;

}  // namespace terse::compress

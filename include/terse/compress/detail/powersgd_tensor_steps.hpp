#pragma once
/// @file
/// The host codec's per-tensor steps (compress::powersgd with declared
/// tensor shapes): encode, decode and reduce of a planned segment. Payload:
///
///     header: codec powersgd, param = rank, count = n,
///             aux = powersgd_shaped_tag | T (T tensors)
///     table:  per tensor u64 rows, u64 cols (0: vector), u64 k (0: dense)
///     body:   per tensor in order: P (m×k) then Qᵀ (k×p), or its values
///
/// 24 + 24T + 4(Σ k(rows + cols) + Σ dense values) bytes.

#include <terse/compress/detail/powersgd_host.hpp>
#include <terse/compress/detail/powersgd_matrix.hpp>
#include <terse/compress/detail/powersgd_state.hpp>
#include <terse/compress/detail/powersgd_tensors.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/verbs.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace terse::detail {

inline std::uint64_t powersgd_values_in(std::span<const tensor_shape> tensors) noexcept
{
  std::uint64_t n = 0;
  for (const tensor_shape& t : tensors) {
    n += t.count();
  }
  return n;
}

template <class Blas>
std::size_t powersgd_encode_tensors(powersgd_host_state& state, std::uint32_t rank, const codec_context& ctx,
                                    host_span<const float> in, host_span<std::byte> out)
{
  powersgd_new_group_guard created(state.groups, ctx.bucket);
  powersgd_group& g = powersgd_group_for(state.groups, ctx, rank, in.size());
  const powersgd_plan& plan = g.plan;
  const std::uint64_t bytes = plan.payload_bytes();
  TERSE_EXPECTS(out.size() >= bytes, "powersgd needs encoded_bytes(ctx, n) = " + std::to_string(bytes) +
                                         " bytes of output for these tensors, got " + std::to_string(out.size()));
  wire::write_header(out, {.codec = wire::codec_id::powersgd,
                           .param = rank,
                           .count = plan.n,
                           .aux = powersgd_shaped_tag | plan.pieces.size()});
  write_powersgd_table(out.data() + wire::header_bytes, plan);
  std::byte* body = out.data() + wire::header_bytes + powersgd_entry_bytes * plan.pieces.size();
  for (const powersgd_piece& piece : plan.pieces) {
    const float* values = in.data() + piece.offset;
    std::byte* at = body + sizeof(float) * piece.wire_at;
    if (piece.dense) {
      TERSE_CHECK(max_magnitude_bits(values, piece.shape.n) < first_non_finite_bits, errc::non_finite,
                  "powersgd encode: the values hold NaN or Inf");
      if (piece.shape.n != 0) {  // an empty vector: no bytes, and its pointer may be null
        std::memcpy(at, values, sizeof(float) * piece.shape.n);
      }
    } else {
      powersgd_encode_matrix<Blas>(values, piece.shape, g.matrices[piece.matrix], state.scaled, ctx.shared_stream(),
                                   piece.q_at, at);
    }
  }
  for (powersgd_bucket& b : g.matrices) {  // every tensor succeeded: commit
    std::swap(b.q, b.q_next);
  }
  created.keep();
  return bytes;
}

/// Validates the payload completely against the plan of ctx.tensors, then
/// out += decoded (add) or out = decoded.
template <class Blas>
void powersgd_decode_tensors(powersgd_host_state& state, std::uint32_t rank, const codec_context& ctx,
                             host_span<const std::byte> payload, host_span<float> out, bool add)
{
  // The plan of a segment this codec encodes or reduces, else one kept for
  // decoding only (so a warm decoder does not allocate).
  const auto matches = [&](const powersgd_plan& had) {
    return had.n == out.size() && had.rank == rank && had.same_tensors(ctx.tensors);
  };
  const auto known = state.groups.find(ctx.bucket);
  const powersgd_plan* found =
      known != state.groups.end() && matches(known->second.plan) ? &known->second.plan : nullptr;
  if (found == nullptr) {
    auto decoding = state.decode_plans.find(ctx.bucket);
    if (decoding == state.decode_plans.end() || !matches(decoding->second)) {
      powersgd_plan planned = make_powersgd_plan(ctx.tensors, rank, out.size());
      decoding = state.decode_plans.insert_or_assign(ctx.bucket, std::move(planned)).first;
    }
    found = &decoding->second;
  }
  const powersgd_plan& plan = *found;
  const wire::header h = wire::read_header(payload, wire::codec_id::powersgd, plan.n);
  TERSE_CHECK(h.param == rank && h.aux == (powersgd_shaped_tag | plan.pieces.size()), errc::malformed_payload,
              "powersgd payload has rank " + std::to_string(h.param) + " and aux word " + std::to_string(h.aux) +
                  "; the receiver expects rank " + std::to_string(rank) + " over " +
                  std::to_string(plan.pieces.size()) + " tensors");
  wire::expect_length(payload, plan.payload_bytes(), wire::codec_id::powersgd);
  check_powersgd_table(payload.data() + wire::header_bytes, plan);
  const std::uint64_t floats = plan.p_floats + plan.q_floats;
  state.factors.resize(floats);
  if (floats != 0) {  // only empty vectors: nothing to copy, and data() may be null
    std::memcpy(state.factors.data(), payload.data() + wire::header_bytes + powersgd_entry_bytes * plan.pieces.size(),
                sizeof(float) * floats);
  }
  for (const powersgd_piece& piece : plan.pieces) {
    const float* at = state.factors.data() + piece.wire_at;
    if (piece.dense) {
      TERSE_CHECK(max_magnitude_bits(at, piece.shape.n) < first_non_finite_bits, errc::malformed_payload,
                  "powersgd payload holds a non-finite dense value");
    } else {
      powersgd_check_factors(at, at + piece.shape.m * piece.shape.k, piece.shape);
    }
  }
  for (const powersgd_piece& piece : plan.pieces) {
    const float* at = state.factors.data() + piece.wire_at;
    float* to = out.data() + piece.offset;
    if (piece.dense) {
      for (std::size_t i = 0; i < piece.shape.n; ++i) {
        to[i] = add ? to[i] + at[i] : at[i];
      }
    } else {
      powersgd_multiply_out<Blas>(at, at + piece.shape.m * piece.shape.k, piece.shape, add ? 1.0f : 0.0f, to);
    }
  }
}

// reduce in the three parts a collective runs between its own averages of
// the returned spans (powersgd_reduce_tensors runs them around the
// transport's allreduce). Every rank sees the same averages, so all decide
// alike at every part.

/// Every P (and dense value) and the flag, to be averaged over the ranks.
template <class Blas>
host_span<float> powersgd_tensors_first(powersgd_host_state& state, std::uint32_t rank, const codec_context& ctx,
                                        host_span<const float> values)
{
  powersgd_group& g = powersgd_group_for(state.groups, ctx, rank, values.size());
  const powersgd_plan& plan = g.plan;
  float* p_all = g.p_all.data();
  bool finite = true;
  for (const powersgd_piece& piece : plan.pieces) {
    const float* own = values.data() + piece.offset;
    float* p = p_all + piece.p_at;
    if (piece.dense) {
      finite = finite && max_magnitude_bits(own, piece.shape.n) < first_non_finite_bits;
      std::copy_n(own, piece.shape.n, p);
    } else {
      powersgd_bucket& b = g.matrices[piece.matrix];
      normalise_columns(b.q.data(), b.q_hat.data(), piece.shape.p, piece.shape.k, ctx.shared_stream(), piece.q_at);
      finite = powersgd_multiply_p<Blas>(own, piece.shape, b.q_hat.data(), p) < first_non_finite_bits && finite;
    }
  }
  if (!finite) {
    std::fill(p_all, p_all + plan.p_floats, 0.0f);
  }
  p_all[plan.p_floats] = finite ? 0.0f : 1.0f;
  return host_span<float>(p_all, plan.p_floats + 1);
}

/// Once P is averaged: every Qᵀ, to be averaged (empty: the segment has no
/// matrix, nothing to average). A flagged or degenerate P gives zeros, so
/// every rank still takes part.
template <class Blas>
host_span<float> powersgd_tensors_second(powersgd_host_state& state, std::uint32_t rank, const codec_context& ctx,
                                         host_span<const float> values)
{
  powersgd_group& g = powersgd_group_for(state.groups, ctx, rank, values.size());
  const powersgd_plan& plan = g.plan;
  float* p_all = g.p_all.data();
  const bool flagged = p_all[plan.p_floats] != 0.0f;
  bool ok = !flagged && max_magnitude_bits(p_all, plan.p_floats) < first_non_finite_bits;
  for (const powersgd_piece& piece : plan.pieces) {
    if (ok && !piece.dense) {
      const powersgd_shape& s = piece.shape;
      ok = orthonormalise_columns(p_all + piece.p_at, s.m, s.k, g.matrices[piece.matrix].work.data());
      if (ok) {
        powersgd_multiply_q<Blas>(values.data() + piece.offset, s, p_all + piece.p_at, g.q_all.data() + piece.q_at);
      }
    }
  }
  if (!ok) {
    std::fill(g.q_all.begin(), g.q_all.end(), 0.0f);
  }
  g.factors_ok = ok;
  return host_span<float>(g.q_all.data(), plan.q_floats);
}

/// Once Q is averaged: errc::non_finite (state and values unchanged) when a
/// rank flagged or the factors overflow; otherwise writes the values and
/// keeps Q.
template <class Blas>
void powersgd_tensors_last(powersgd_host_state& state, std::uint32_t rank, const codec_context& ctx,
                           host_span<float> values)
{
  powersgd_group& g = powersgd_group_for(state.groups, ctx, rank, values.size());
  const powersgd_plan& plan = g.plan;
  const float* p_all = g.p_all.data();
  TERSE_CHECK(p_all[plan.p_floats] == 0.0f, errc::non_finite, "powersgd reduce: a rank's values hold NaN or Inf");
  bool ok = g.factors_ok && max_magnitude_bits(g.q_all.data(), g.q_all.size()) < first_non_finite_bits;
  for (const powersgd_piece& piece : plan.pieces) {
    if (ok && !piece.dense) {
      const powersgd_shape& s = piece.shape;
      ok = max_row_norm(p_all + piece.p_at, s.m, s.k) * max_q_row_norm(g.q_all.data() + piece.q_at, s.k, s.p) <=
           powersgd_max_product;
    }
  }
  TERSE_CHECK(ok, errc::non_finite, "powersgd reduce: the averaged factors overflow float (values too large)");
  for (const powersgd_piece& piece : plan.pieces) {
    float* to = values.data() + piece.offset;
    if (piece.dense) {
      std::copy_n(p_all + piece.p_at, piece.shape.n, to);  // the exact average
    } else {
      const float* qt = g.q_all.data() + piece.q_at;
      powersgd_multiply_out<Blas>(p_all + piece.p_at, qt, piece.shape, 0.0f, to);
      std::vector<float>& q = g.matrices[piece.matrix].q;
      std::copy_n(qt, q.size(), q.begin());
    }
  }
}

/// One PowerSGD step over the declared tensors of a segment, with the
/// transport's blocking allreduce between the parts.
template <class Blas, class Transport>
void powersgd_reduce_tensors(powersgd_host_state& state, std::uint32_t rank, const codec_context& ctx, Transport& t,
                             host_span<float> values)
{
  powersgd_new_group_guard created(state.groups, ctx.bucket);
  t.allreduce(powersgd_tensors_first<Blas>(state, rank, ctx, values), reduce_op::average);
  const host_span<float> q = powersgd_tensors_second<Blas>(state, rank, ctx, values);
  if (!q.empty()) {  // every rank has the same plan, so all skip alike
    t.allreduce(q, reduce_op::average);
  }
  powersgd_tensors_last<Blas>(state, rank, ctx, values);
  created.keep();
}

/// Sets the warm-start Q of tensor `tensor` of the segment ctx describes
/// (creating its state if needed): `q` is Q, cols×k row-major.
inline void powersgd_set_initial_q(powersgd_host_state& state, std::uint32_t rank, const codec_context& ctx,
                                   std::size_t tensor, host_span<const float> q)
{
  TERSE_EXPECTS(!ctx.tensors.empty(), "powersgd set_initial_q: the context declares no tensor shapes");
  TERSE_EXPECTS(max_magnitude_bits(q.data(), q.size()) < first_non_finite_bits,
                "powersgd set_initial_q: Q holds NaN or Inf");
  powersgd_new_group_guard created(state.groups, ctx.bucket);
  powersgd_group& g = powersgd_group_for(state.groups, ctx, rank, powersgd_values_in(ctx.tensors));
  TERSE_EXPECTS(tensor < g.plan.pieces.size(), "powersgd set_initial_q: tensor " + std::to_string(tensor) +
                                                   " of a segment of " + std::to_string(g.plan.pieces.size()));
  const powersgd_piece& piece = g.plan.pieces[tensor];
  TERSE_EXPECTS(!piece.dense, "powersgd set_initial_q: tensor " + std::to_string(tensor) +
                                  " travels dense (a vector, or too small to compress) and has no Q");
  const powersgd_shape& s = piece.shape;
  TERSE_EXPECTS(q.size() == s.p * s.k, "powersgd set_initial_q: tensor " + std::to_string(tensor) + " needs Q of " +
                                           std::to_string(s.p) + "x" + std::to_string(s.k) + " = " +
                                           std::to_string(s.p * s.k) + " values, got " + std::to_string(q.size()));
  std::vector<float>& qt = g.matrices[piece.matrix].q;
  for (std::size_t j = 0; j < s.p; ++j) {
    for (std::size_t c = 0; c < s.k; ++c) {
      qt[c * s.p + j] = q[j * s.k + c];
    }
  }
  created.keep();
}

}  // namespace terse::detail

#pragma once
/// @file
/// PowerSGD per tensor: when the layout declares tensor shapes, a segment is
/// planned tensor by tensor. Each matrix is compressed with its own shape
/// (rows × cols, k = min(rank, rows, cols)) and its own warm-start Q; a
/// vector, or a matrix whose factors would not be smaller than itself
/// (k(rows + cols) ≥ rows·cols), is sent dense and averaged exactly, as in
/// PyTorch's powerSGD_hook. The plan fixes where every tensor's factors lie
/// in the payload and in the two reduce buffers (every P and dense value,
/// then every Q: one allreduce each for the whole segment).

#include <terse/compress/detail/powersgd_bucket.hpp>
#include <terse/compress/detail/powersgd_math.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/philox.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/tensor_shape.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace terse::detail {

/// The wire's aux word of a per-tensor payload: this bit, or'd with the
/// tensor count. (A flat payload's aux is m << 32 | p with m < 2^31.)
inline constexpr std::uint64_t powersgd_shaped_tag = std::uint64_t{1} << 63;
/// Per tensor, after the header: u64 rows, u64 cols (0 for a vector), u64 k
/// (0 when the tensor travels dense).
inline constexpr std::size_t powersgd_entry_bytes = 24;

/// One tensor of a planned segment.
struct powersgd_piece {
  std::uint64_t offset = 0;  ///< first value within the segment
  tensor_shape tensor;       ///< as declared
  powersgd_shape shape;      ///< compressed: M's shape and rank; dense: n only, k = 0
  bool dense = false;
  std::uint64_t p_at = 0;     ///< reduce: P (m×k), or the dense values, in the P buffer
  std::uint64_t q_at = 0;     ///< reduce: Qᵀ (k×p) in the Q buffer; also where its Q draws start
  std::uint64_t wire_at = 0;  ///< payload: its body (P then Qᵀ, or the values), after the table
  std::size_t matrix = 0;     ///< compressed: index into powersgd_group::matrices
};

struct powersgd_plan {
  std::vector<powersgd_piece> pieces;
  std::uint64_t n = 0;
  std::uint64_t rank = 0;      ///< the codec's rank it was planned at
  std::uint64_t p_floats = 0;  ///< Σ m·k over compressed matrices + Σ dense values
  std::uint64_t q_floats = 0;  ///< Σ p·k over compressed matrices
  std::size_t matrices = 0;

  /// header + one table entry per tensor + every factor and dense value.
  std::uint64_t payload_bytes() const noexcept
  {
    return wire::header_bytes + powersgd_entry_bytes * pieces.size() + sizeof(float) * (p_floats + q_floats);
  }
  bool same_tensors(std::span<const tensor_shape> tensors) const noexcept
  {
    return tensors.size() == pieces.size() &&
           std::equal(tensors.begin(), tensors.end(), pieces.begin(),
                      [](const tensor_shape& t, const powersgd_piece& p) { return t == p.tensor; });
  }
};

/// Plans `tensors` at `rank` for a call on n values; errc::invalid_argument
/// when a shape is invalid or the shapes do not hold exactly n values.
inline powersgd_plan make_powersgd_plan(std::span<const tensor_shape> tensors, std::uint64_t rank, std::uint64_t n)
{
  powersgd_plan plan;
  plan.pieces.reserve(tensors.size());
  std::uint64_t offset = 0;
  std::uint64_t wire_at = 0;
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    const tensor_shape& shape = tensors[t];
    const bool valid = shape.is_matrix() ? shape.rows != 0 && shape.cols != 0 &&
                                               shape.rows <= std::numeric_limits<std::uint64_t>::max() / shape.cols
                                         : shape.dims == 1 && shape.cols == 1;
    TERSE_EXPECTS(valid && shape.count() <= n - offset,
                  "powersgd: tensor " + std::to_string(t) + " (" + std::to_string(shape.rows) + "x" +
                      std::to_string(shape.cols) + ") is not a valid shape within the " + std::to_string(n) +
                      " values of the call");
    powersgd_piece piece;
    piece.offset = offset;
    piece.tensor = shape;
    piece.p_at = plan.p_floats;
    piece.q_at = plan.q_floats;
    piece.wire_at = wire_at;
    const powersgd_shape s = powersgd_matrix_shape(shape.rows, shape.cols, rank);
    piece.dense = !shape.is_matrix() || s.factor_count() >= s.n;
    if (piece.dense) {
      piece.shape.n = shape.count();
      plan.p_floats += piece.shape.n;
      wire_at += piece.shape.n;
    } else {
      piece.shape = s;
      piece.matrix = plan.matrices++;
      plan.p_floats += s.m * s.k;
      plan.q_floats += s.p * s.k;
      wire_at += s.factor_count();
    }
    offset += shape.count();
    plan.pieces.push_back(piece);
  }
  TERSE_EXPECTS(offset == n, "powersgd: the context's tensor shapes hold " + std::to_string(offset) +
                                 " values; the call has " + std::to_string(n));
  plan.n = n;
  plan.rank = rank;
  return plan;
}

/// A planned segment's state: the plan, and per compressed matrix its
/// warm-start Q and scratch (a powersgd_bucket shaped like the matrix).
struct powersgd_group {
  powersgd_plan plan;
  std::vector<powersgd_bucket> matrices;
  std::vector<float> p_all;  ///< reduce: every P and dense value, then the flag
  std::vector<float> q_all;  ///< reduce: every Qᵀ
  bool factors_ok = false;   ///< reduce: the averaged P was finite and every P̂ independent

  void allocate(powersgd_plan planned)
  {
    plan = std::move(planned);
    matrices.assign(plan.matrices, powersgd_bucket{});
    for (const powersgd_piece& piece : plan.pieces) {
      if (!piece.dense) {
        matrices[piece.matrix].allocate(piece.shape);
      }
    }
    p_all.assign(plan.p_floats + 1, 0.0f);
    q_all.assign(plan.q_floats, 0.0f);
  }

  /// Q drawn from the shared stream: matrix i's from q_at onwards, so the
  /// matrices of a segment start from independent directions.
  void seed(const random_stream& shared)
  {
    for (const powersgd_piece& piece : plan.pieces) {
      if (!piece.dense) {
        std::vector<float>& q = matrices[piece.matrix].q;
        for (std::size_t i = 0; i < q.size(); ++i) {
          q[i] = powersgd_seed_value(shared, piece.q_at + i);
        }
      }
    }
  }
};

/// The groups by segment id. A segment keeps its shapes and rank: another
/// set for the same id is errc::invalid_argument.
inline powersgd_group& powersgd_group_for(std::map<bucket_id, powersgd_group>& groups, const codec_context& ctx,
                                          std::uint64_t rank, std::uint64_t n)
{
  auto found = groups.find(ctx.bucket);
  if (found != groups.end()) {
    const powersgd_plan& had = found->second.plan;
    TERSE_EXPECTS(had.n == n && had.rank == rank && had.same_tensors(ctx.tensors),
                  "powersgd segment " + std::to_string(ctx.bucket) + " was planned for " +
                      std::to_string(had.pieces.size()) + " tensors of " + std::to_string(had.n) +
                      " values; this call has " + std::to_string(ctx.tensors.size()) + " tensors of " +
                      std::to_string(n) + " (or other shapes, or another rank)");
    return found->second;
  }
  powersgd_group fresh;
  fresh.allocate(make_powersgd_plan(ctx.tensors, rank, n));
  fresh.seed(ctx.shared_stream());
  return groups.emplace(ctx.bucket, std::move(fresh)).first->second;
}

/// Forgets a group the current call created unless the call succeeds.
class powersgd_new_group_guard {
 public:
  powersgd_new_group_guard(std::map<bucket_id, powersgd_group>& groups, bucket_id id)
      : groups_(&groups), id_(id), fresh_(!groups.contains(id))
  {
  }
  powersgd_new_group_guard(const powersgd_new_group_guard&) = delete;
  powersgd_new_group_guard& operator=(const powersgd_new_group_guard&) = delete;
  ~powersgd_new_group_guard()
  {
    if (fresh_) {
      groups_->erase(id_);
    }
  }
  void keep() noexcept { fresh_ = false; }

 private:
  std::map<bucket_id, powersgd_group>* groups_;
  bucket_id id_;
  bool fresh_;
};

/// Writes the per-tensor table after the header: what the decoder checks
/// against its own plan before it reads a factor.
inline void write_powersgd_table(std::byte* at, const powersgd_plan& plan)
{
  for (const powersgd_piece& piece : plan.pieces) {
    wire::store(at, std::uint64_t{piece.tensor.rows});
    wire::store(at + 8, std::uint64_t{piece.tensor.is_matrix() ? piece.tensor.cols : 0});
    wire::store(at + 16, std::uint64_t{piece.shape.k});
    at += powersgd_entry_bytes;
  }
}

/// errc::malformed_payload unless the table at `at` is exactly `plan`'s.
inline void check_powersgd_table(const std::byte* at, const powersgd_plan& plan)
{
  for (std::size_t t = 0; t < plan.pieces.size(); ++t) {
    const powersgd_piece& piece = plan.pieces[t];
    const auto rows = wire::load<std::uint64_t>(at);
    const auto cols = wire::load<std::uint64_t>(at + 8);
    const auto k = wire::load<std::uint64_t>(at + 16);
    const std::uint64_t want_cols = piece.tensor.is_matrix() ? piece.tensor.cols : 0;
    TERSE_CHECK(rows == piece.tensor.rows && cols == want_cols && k == piece.shape.k, errc::malformed_payload,
                "powersgd payload describes tensor " + std::to_string(t) + " as " + std::to_string(rows) + "x" +
                    std::to_string(cols) + " rank " + std::to_string(k) + "; the receiver's layout has " +
                    std::to_string(piece.tensor.rows) + "x" + std::to_string(want_cols) + " rank " +
                    std::to_string(piece.shape.k));
    at += powersgd_entry_bytes;
  }
}

// --- saved state --------------------------------------------------------------
//
// After the flat buckets (powersgd_state.hpp), when any segment was planned
// per tensor (the header's bucket count then has bit 63 set):
//
//     section "powersgd.tensors", u64 group count
//     per group, in increasing id order:
//       section "powersgd.group", u32 id, u64 n,
//       u64[3·T] (rows, cols, dims) per tensor,
//       per compressed matrix: f32[k·cols] Qᵀ

inline constexpr std::uint64_t powersgd_groups_follow = std::uint64_t{1} << 63;

/// `groups` maps ids to anything with a `plan` (the host's or the device's
/// group); `matrix_q(group, piece)` gives that matrix's Qᵀ as a host span.
template <class Group, class MatrixQ>
void write_powersgd_groups(state_writer& out, const std::map<bucket_id, Group>& groups, MatrixQ&& matrix_q)
{
  out.section("powersgd.tensors");
  out.value(std::uint64_t{groups.size()});
  std::vector<std::uint64_t> table;
  for (const auto& [id, g] : groups) {
    out.section("powersgd.group");
    out.value(std::uint32_t{id});
    out.value(std::uint64_t{g.plan.n});
    table.clear();
    for (const powersgd_piece& piece : g.plan.pieces) {
      table.insert(table.end(), {piece.tensor.rows, piece.tensor.cols, piece.tensor.dims});
    }
    out.array(host_span<const std::uint64_t>(table));
    for (const powersgd_piece& piece : g.plan.pieces) {
      if (!piece.dense) {
        out.array(matrix_q(g, piece));
      }
    }
  }
}

/// Reads what write_powersgd_groups wrote: calls `make(id, plan)` per group,
/// then `read_q(group, piece)` for each compressed matrix. errc::io on a
/// shape that is invalid, or ids out of order.
template <class Make, class ReadQ>
void read_powersgd_groups(state_reader& in, std::uint32_t rank, Make&& make, ReadQ&& read_q)
{
  in.section("powersgd.tensors");
  const auto count = in.value<std::uint64_t>();
  bucket_id last = 0;
  for (std::uint64_t g = 0; g < count; ++g) {
    in.section("powersgd.group");
    const auto id = in.value<std::uint32_t>();
    TERSE_CHECK(g == 0 || id > last, errc::io, "terse state: powersgd groups are not in increasing id order");
    last = id;
    const auto n = in.value<std::uint64_t>();
    const std::uint64_t length = in.peek_array_length();
    TERSE_CHECK(length % 3 == 0, errc::io, "terse state: a powersgd group's shape table is broken");
    std::vector<std::uint64_t> table(length);
    in.array(host_span<std::uint64_t>(table));
    std::vector<tensor_shape> shapes;
    for (std::size_t t = 0; t < length; t += 3) {
      TERSE_CHECK(table[t + 2] <= 2, errc::io, "terse state: a powersgd tensor has neither 1 nor 2 dimensions");
      shapes.push_back(tensor_shape{table[t], table[t + 1], static_cast<std::uint8_t>(table[t + 2])});
    }
    powersgd_plan plan;
    try {
      plan = make_powersgd_plan(shapes, rank, n);
    } catch (const error&) {
      TERSE_CHECK(false, errc::io, "terse state: powersgd group " + std::to_string(id) + " holds invalid shapes");
    }
    auto& group = make(id, std::move(plan));
    for (const powersgd_piece& piece : group.plan.pieces) {
      if (!piece.dense) {
        read_q(group, piece);
      }
    }
  }
}

}  // namespace terse::detail

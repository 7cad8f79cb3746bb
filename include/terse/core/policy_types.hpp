#pragma once
/// @file
/// The small value types the four policies exchange with a collective: what
/// a compressor is told about the call, how its payloads combine across
/// ranks, and what a schedule asks for at each hook.

#include <terse/core/philox.hpp>
#include <terse/core/tensor_shape.hpp>

#include <cstdint>
#include <span>
#include <string_view>

namespace terse {

/// How a compressor's payloads combine across ranks; the collective picks
/// its algorithm from this at compile time.
enum class aggregation : std::uint8_t {
  /// Payloads add up elementwise (casts, shared-seed random-k, PowerSGD
  /// factors): one plain allreduce of the encoded values.
  summable,
  /// The sum can be re-encoded by the rank that owns a shard (b-bit, QSGD,
  /// sign, TernGrad): scatter-reduce-allgather with owner re-compression,
  /// so every rank decodes the same bytes.
  requantizable,
  /// Payloads cannot be combined without decoding (top-k, threshold, DGC):
  /// allgather every payload, then decode and sum.
  gather_only,
};

constexpr std::string_view to_string(aggregation a) noexcept
{
  switch (a) {
    case aggregation::summable: return "summable";
    case aggregation::requantizable: return "requantizable";
    case aggregation::gather_only: return "gather-only";
  }
  return "unknown";
}

/// Everything a compressor may depend on besides the values. Stochastic
/// draws are keyed by (seed, step, bucket, element), so every rank and
/// backend reproduces them.
struct codec_context {
  std::uint64_t seed = 0;    ///< shared by all ranks
  std::uint64_t step = 0;    ///< the training step
  std::uint32_t bucket = 0;  ///< stable bucket id
  int rank = 0;
  int world = 1;
  /// Element offset of the values being coded within their bucket (a shard
  /// of a bucket draws the same numbers as the whole bucket would there).
  std::uint64_t offset = 0;
  /// 0 for a rank's own encoding, 1 for an owner's re-encoding of a reduced
  /// shard: the two draw independent noise.
  std::uint32_t phase = 0;
  /// The shapes of the tensors the values are made of, in order, when the
  /// layout declares them (layout::set_shapes); empty otherwise. Matrix
  /// codecs (PowerSGD) compress each matrix with its own shape; the others
  /// ignore it. Points into the layout: valid for the call only.
  std::span<const tensor_shape> tensors{};

  /// Draws every rank shares (random-k's indices): seed, step and bucket only.
  constexpr random_stream shared_stream() const noexcept
  {
    return random_stream{seed, static_cast<std::uint32_t>(step), bucket};
  }

  /// Draws private to this rank and phase (stochastic rounding): independent
  /// across ranks, so averaging shrinks the noise, yet replayable by anyone
  /// who knows the rank.
  constexpr random_stream private_stream() const noexcept
  {
    const std::uint64_t salt = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(rank)) << 32 | phase) + 1;
    return random_stream{seed ^ (salt * 0x9E3779B97F4A7C15ull), static_cast<std::uint32_t>(step), bucket};
  }
};

/// A stable name for a bucket of the flat gradient buffer; state (residuals,
/// momentum, PowerSGD Q) is keyed by it.
using bucket_id = std::uint32_t;

/// What a schedule is told at each hook.
struct step_context {
  std::uint64_t step = 0;  ///< steps completed before this one
};

/// What a schedule asks the collective to do at a hook.
enum class sync_action : std::uint8_t {
  skip,     ///< communicate nothing now
  average,  ///< average across ranks (gradients or parameters, by hook)
};

}  // namespace terse

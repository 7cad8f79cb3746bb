#pragma once
/// @file
/// `terse::cost::step_plan`: what one step of `terse::allreduce` sends and
/// computes, phase by phase, before any network prices it. Every phase of
/// terse's allreduce is one grouped exchange in which each rank sends one
/// message to every other rank (docs/collectives.md, "The algorithms,
/// chosen by the codec"); a message's size depends on its sender (an
/// owner's frame to all) or on its receiver (shard d to rank d). The sizes
/// are terse's own, byte for byte (frame headers, flag values, uneven
/// blocks), so a plan's bytes equal what `terse::metered` counts.

#include <terse/collective/sparse_aggregation.hpp>
#include <terse/cost/codec_speed.hpp>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace terse::cost {

/// Whose index a phase's message size depends on.
enum class sized_by : std::uint8_t {
  receiver,  ///< rank `from` sends bytes[to] to rank `to` (a reduce-scatter)
  sender,    ///< rank `from` sends bytes[from] to every other rank (an allgather)
};

/// One grouped exchange: every rank sends one message to every other rank.
struct phase {
  std::string_view name;
  sized_by by = sized_by::sender;
  std::vector<std::uint64_t> bytes{};  ///< one entry per rank (file comment)
  /// Local work on the critical path before the phase is posted (encode,
  /// the fold of the previous phase), seconds.
  double compute_s = 0.0;
  /// The transport's own verbs post their receives before their sends (the
  /// allreduce's exchanges post sends first); only the polling term sees it.
  bool receives_first = false;

  int world() const noexcept { return static_cast<int>(bytes.size()); }
  std::uint64_t message_bytes(int from, int to) const noexcept
  {
    return bytes[static_cast<std::size_t>(by == sized_by::sender ? from : to)];
  }
  std::uint64_t sent_by(int rank) const noexcept
  {
    std::uint64_t total = 0;
    for (int to = 0; to < world(); ++to) {
      total += to == rank ? 0 : message_bytes(rank, to);
    }
    return total;
  }
  std::uint64_t received_by(int rank) const noexcept
  {
    std::uint64_t total = 0;
    for (int from = 0; from < world(); ++from) {
      total += from == rank ? 0 : message_bytes(from, rank);
    }
    return total;
  }
};

/// One step: its phases in order, then the local work after the last.
struct step_plan {
  int world = 1;
  std::vector<phase> phases{};
  double compute_after_s = 0.0;  ///< decoding, scaling, the copy that commits the step

  /// Bytes `rank` sends to other ranks in the step (what terse::metered counts).
  std::uint64_t bytes_sent(int rank) const noexcept
  {
    std::uint64_t total = 0;
    for (const phase& p : phases) {
      total += p.sent_by(rank);
    }
    return total;
  }
  std::uint64_t bytes_received(int rank) const noexcept
  {
    std::uint64_t total = 0;
    for (const phase& p : phases) {
      total += p.received_by(rank);
    }
    return total;
  }
};

/// What the step runs with besides the codec.
struct step_options {
  /// Count the local work (encode, decode, fold, commit) at `speed`. Off by
  /// default: network only, as SMPI with `smpi/simulate-computation:no`.
  bool compute = false;
  /// The codec's speeds; unset: measured_speed(codec) (codec_speed.hpp).
  std::optional<codec_speed> speed{};
  /// Residual error feedback: fused into encode where the codec fuses it,
  /// otherwise a compensation pass and a decode of the rank's own payload.
  bool residual = false;
  /// How gather-only codecs aggregate (allreduce_config::sparse).
  sparse_aggregation sparse = sparse_aggregation::allgather;
  /// Variable-size gather-only codecs (threshold, DGC): the expected
  /// encoded bytes of a whole bucket; 0 takes max_encoded_bytes(n), an upper
  /// bound (dense-sized for threshold).
  std::uint64_t expected_payload_bytes = 0;
};

}  // namespace terse::cost

#pragma once
/// @file
/// The phases of each aggregation path of terse's allreduce
/// (collective/detail/allreduce_engine.hpp), as a cost::step_plan: the
/// message sizes the engine posts and the local work between them. One
/// bucket of n values, one compressed segment (or the dense bucket).

#include <terse/collective/detail/framing.hpp>
#include <terse/compress/identity.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/error.hpp>
#include <terse/cost/step_plan.hpp>
#include <terse/transport/detail/partition.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace terse::cost::detail {

using terse::detail::block_of;
using terse::detail::frame_header_bytes;

/// PowerSGD and any codec that runs its own allreduces of low-rank factors.
template <class C>
concept factorising = requires(const C& c, std::size_t n)
{
  c.shape(n).factor_count();
  c.shape(n).m;
  c.shape(n).p;
  c.shape(n).k;
};

/// Seconds of local work, or 0 when the plan leaves compute out.
class work {
 public:
  work(bool counted, const codec_speed& speed) : counted_(counted), speed_(speed) {}

  /// Encoding `values` floats, fused with residual feedback or not.
  double encode(double values, bool fused) const
  {
    return fused ? pass(values, speed_.encode_residual_bytes_per_s, "encode_residual")
                 : pass(values, speed_.encode_bytes_per_s, "encode");
  }
  /// Residual feedback the codec does not fuse: the compensation pass
  /// (g + e) and the decode of the rank's own payload (what e keeps).
  double unfused_feedback(double values) const { return memory(values) + decode(values); }
  double decode(double values) const { return pass(values, speed_.decode_bytes_per_s, "decode"); }
  /// A pass that reads and writes (a copy, a fold, a scale).
  double memory(double values) const { return pass(values, speed_.memory_bytes_per_s, "memory"); }
  // (Zeroing a buffer only writes: it counts half a memory pass, 0.5 * memory.)

 private:
  double pass(double values, double bytes_per_s, const char* which) const
  {
    if (!counted_) {
      return 0.0;
    }
    TERSE_EXPECTS(bytes_per_s > 0.0, std::string("cost::plan: the codec's ") + which +
                                         " speed is unknown; set step_options::speed or step_options::compute = false");
    return 4.0 * values / bytes_per_s;
  }

  bool counted_;
  codec_speed speed_;
};

inline std::vector<std::uint64_t> per_rank(int world, auto&& size_of)
{
  std::vector<std::uint64_t> bytes(static_cast<std::size_t>(world));
  for (int r = 0; r < world; ++r) {
    bytes[static_cast<std::size_t>(r)] = static_cast<std::uint64_t>(size_of(r));
  }
  return bytes;
}

/// Reduce-scatter then allgather of `elements` values of `element_bytes`
/// each: block r (detail::block_of) to rank r, then every block to all.
inline void reduce_scatter_allgather(step_plan& plan, std::string_view scatter, std::string_view gather,
                                     std::size_t elements, std::size_t element_bytes, double before, double between,
                                     bool receives_first)
{
  const int w = plan.world;
  const auto block = [&](int r) { return block_of(elements, w, r).count * element_bytes; };
  plan.phases.push_back(phase{scatter, sized_by::receiver, per_rank(w, block), before, receives_first});
  plan.phases.push_back(phase{gather, sized_by::sender, per_rank(w, block), between, receives_first});
}

template <class C>
step_plan plan_step(int world, std::size_t n, const C& codec, const step_options& options, const codec_speed& speed)
{
  TERSE_EXPECTS(world >= 1, "cost::plan: the world has at least one rank");
  step_plan plan{.world = world};
  const work cpu(options.compute, speed);
  const double values = static_cast<double>(n);
  const double shard = values / world;
  const bool residual = options.residual;
  // Byte codecs (requantizable, gather-only) fuse residual feedback into
  // encode when they can (allreduce_engine's `fusable`).
  constexpr bool fuses = concepts::residual_fusing_compressor<C>;
  const auto byte_encode = [&] {
    return cpu.encode(values, residual && fuses) + (residual && !fuses ? cpu.unfused_feedback(values) : 0.0);
  };
  if constexpr (std::is_same_v<C, compress::identity>) {
    // The dense bucket: fold the W contributions to the own block, then
    // the copy that commits the step.
    reduce_scatter_allgather(plan, "reduce-scatter", "allgather", n, sizeof(float), 0.0, cpu.memory(values), false);
    plan.compute_after_s = cpu.memory(values);
  } else if constexpr (factorising<C>) {
    // PowerSGD: P = M Q, allreduce P (and a flag), orthonormalise, Q = M^T P,
    // allreduce Q, decode P Q^T. A codec that reduces in parts runs both
    // averages as the engine's exchanges (sends posted first); one with only
    // a blocking reduce, as the transport's allreduce verbs.
    constexpr bool verbs = !concepts::staged_reducing_compressor<C>;
    const auto s = codec.shape(n);
    const double before = cpu.encode(values, false) + (residual ? cpu.memory(values) : 0.0);
    reduce_scatter_allgather(plan, "P reduce-scatter", "P allgather", s.m * s.k + 1, sizeof(float), before,
                             cpu.memory(static_cast<double>(s.m * s.k)), verbs);
    reduce_scatter_allgather(plan, "Q reduce-scatter", "Q allgather", s.p * s.k, sizeof(float),
                             cpu.encode(values, false), cpu.memory(static_cast<double>(s.p * s.k)), verbs);
    plan.compute_after_s = cpu.decode(values) + cpu.memory(values);
  } else if constexpr (C::aggregation_kind == aggregation::summable) {
    static_assert(concepts::summable_compressor<C>,
                  "cost::plan: a summable codec needs wire_type and wire_count (or the factors of PowerSGD)");
    // The encoded values plus one flag value, reduce-scattered and allgathered.
    const std::size_t m = codec.wire_count(n) + 1;
    const double before = cpu.encode(values, false) + (residual ? cpu.unfused_feedback(values) : 0.0);
    reduce_scatter_allgather(plan, "reduce-scatter", "allgather", m, sizeof(typename C::wire_type), before,
                             cpu.memory(static_cast<double>(m)), false);
    plan.compute_after_s = cpu.decode(values) + cpu.memory(values);
  } else if constexpr (C::aggregation_kind == aggregation::requantizable) {
    // Every shard's frame is sent in the room of the largest (shard 0); the
    // owner zeroes a sum, decodes the W contributions, averages, re-encodes
    // its shard and sends its frame to all; every rank zeroes the result,
    // decodes the W shards and commits.
    const auto room = [&](int s) { return frame_header_bytes + codec.max_encoded_bytes(block_of(n, world, s).count); };
    plan.phases.push_back(
        phase{"shards to owners", sized_by::receiver, per_rank(world, [&](int) { return room(0); }), byte_encode()});
    plan.phases.push_back(phase{"owners to all", sized_by::sender, per_rank(world, room),
                                cpu.decode(values) + 1.5 * cpu.memory(shard) + cpu.encode(shard, false)});
    plan.compute_after_s = cpu.decode(values) + 1.5 * cpu.memory(values);
  } else {
    static_assert(C::aggregation_kind == aggregation::gather_only, "cost::plan: unknown aggregation kind");
    constexpr bool fixed = concepts::fixed_size_compressor<C>;
    const double encode = byte_encode();
    const auto payload = [&](std::size_t count) -> std::uint64_t {
      if (fixed || options.expected_payload_bytes == 0) {
        return codec.max_encoded_bytes(count);
      }
      // A shard of a variable-size payload: the header plus its share of the body.
      const double body = static_cast<double>(options.expected_payload_bytes) - wire::header_bytes;
      return wire::header_bytes +
             static_cast<std::uint64_t>(body * static_cast<double>(count) / static_cast<double>(n == 0 ? 1 : n));
    };
    if (options.sparse == sparse_aggregation::allgather) {
      const std::uint64_t frame = frame_header_bytes + payload(n);
      plan.phases.push_back(phase{"payload sizes", sized_by::sender, per_rank(world, [](int) { return 8; }), encode});
      plan.phases.push_back(phase{"payloads to all", sized_by::sender, per_rank(world, [&](int) { return frame; })});
      // Every rank zeroes the result, decodes all W payloads, scales by 1/W
      // and commits.
      plan.compute_after_s = world * cpu.decode(values) + 2.5 * cpu.memory(values);
    } else {
      // Sparse reduce-scatter: shard d's payload to rank d; the owner
      // averages and re-selects; its payload to all (variable sizes are
      // announced first, one 8-byte word per message).
      const auto frame = [&](int s) { return frame_header_bytes + payload(block_of(n, world, s).count); };
      const auto word = [](int) { return 8; };
      const double owner = cpu.decode(values) + 1.5 * cpu.memory(shard) + cpu.encode(shard, false);
      if (!fixed) {
        plan.phases.push_back(phase{"shard sizes", sized_by::receiver, per_rank(world, word), encode});
      }
      plan.phases.push_back(
          phase{"shards to owners", sized_by::receiver, per_rank(world, frame), fixed ? encode : 0.0});
      if (!fixed) {
        plan.phases.push_back(phase{"owner sizes", sized_by::sender, per_rank(world, word), owner});
      }
      plan.phases.push_back(phase{"owners to all", sized_by::sender, per_rank(world, frame), fixed ? owner : 0.0});
      plan.compute_after_s = cpu.decode(values) + 1.5 * cpu.memory(values);
    }
  }
  return plan;
}

}  // namespace terse::cost::detail

#pragma once
/// @file
/// The units a step of the allreduce is made of, and what each keeps
/// between the phases of its exchange. A unit is one bucket's packed small
/// tensors (dense), one compressed segment, or a whole bucket when nothing
/// is compressed. Units are numbered once per layout; unit u's exchanges
/// use tags base + 2u and base + 2u + 1, so ranks match them by number
/// whatever order each rank starts its buckets in.

#include <terse/collective/detail/framing.hpp>
#include <terse/collective/layout.hpp>
#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace terse::detail {

/// The first tag the allreduce's exchanges use (user tags below it are free).
inline constexpr int allreduce_tag_base = 1 << 10;
/// Tags every transport accepts (MPI guarantees 32767 at least).
inline constexpr int allreduce_tag_limit = 32767;

enum class unit_kind : std::uint8_t {
  dense,       ///< floats averaged exactly: a whole bucket, or its small tensors packed
  compressed,  ///< one segment through the codec's aggregation path
};

enum class unit_stage : std::uint8_t {
  idle,        ///< not started this step
  waiting,     ///< started; its work waits for the rest of the step (whole-gradient feedback, self-reducing codecs)
  exchanging,  ///< an exchange of phase `phase` is in flight
  done,        ///< finished: `status` says how
};

/// One unit: where it sits in the layout and its per-step state. Buffers
/// grow on the first step and are reused, so later steps do not allocate.
struct step_unit {
  unit_kind kind = unit_kind::dense;
  std::size_t bucket = 0;    ///< index into layout::buckets()
  std::size_t segment = 0;   ///< compressed: index into layout::segments()
  bucket_id segment_id = 0;  ///< compressed: the segment's id (keys feedback and draws)
  bool whole_bucket = false;
  std::size_t count = 0;  ///< elements
  int tag = 0;

  // This step.
  unit_stage stage = unit_stage::idle;
  int phase = 0;
  exchange_id pending{};
  frame_status status = frame_status::ok;
  bool failed = false;                   ///< the transport raised while this unit exchanged
  bool flush = false;                    ///< compensated values sent dense (periodic_flush)
  bool fused = false;                    ///< the codec wrote the residual into the feedback's staging
  bool reselected = false;               ///< sparse reduce-scatter: an owner re-selected each shard
  host_span<const float> input{};        ///< what this rank contributes (the caller's values, or packed)
  host_span<const float> compensated{};  ///< input plus held-back error (the feedback's buffer)
  host_span<float> factors{};            ///< self-reducing in parts: the codec's span being averaged
  /// Compressed: the segment's tensor shapes, if the layout declares them.
  std::span<const tensor_shape> shapes{};

  // Scratch, grown once.
  std::vector<float> packed, result, own_decoded;
  std::vector<std::byte> send, recv, owner, gathered;
  std::vector<std::uint64_t> sizes;
  std::vector<std::size_t> offsets;  ///< sparse reduce-scatter: where each rank's frame lies
};

/// Numbers the units of `shape`. With `compress` false every bucket is one
/// dense unit; otherwise a bucket has one dense unit for its small tensors
/// (if any) and one compressed unit per compressed segment.
inline std::vector<step_unit> plan_units(const layout& shape, bool compress)
{
  std::vector<step_unit> units;
  const auto buckets = shape.buckets();
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    if (!compress) {
      step_unit u;
      u.bucket = b;
      u.whole_bucket = true;
      u.count = buckets[b].count;
      units.push_back(std::move(u));
      continue;
    }
    std::size_t dense = 0;
    for (const segment& seg : shape.segments_of(buckets[b])) {
      dense += seg.compressed ? 0 : seg.count;
    }
    if (dense != 0) {
      step_unit u;
      u.bucket = b;
      u.whole_bucket = dense == buckets[b].count;
      u.count = dense;
      units.push_back(std::move(u));
    }
    for (std::size_t s = buckets[b].first_segment; s < buckets[b].first_segment + buckets[b].segment_count; ++s) {
      if (shape.segments()[s].compressed) {
        step_unit u;
        u.kind = unit_kind::compressed;
        u.bucket = b;
        u.segment = s;
        u.segment_id = shape.segments()[s].id;
        u.count = shape.segments()[s].count;
        units.push_back(std::move(u));
      }
    }
  }
  TERSE_EXPECTS(allreduce_tag_base + 2 * units.size() <= static_cast<std::size_t>(allreduce_tag_limit),
                "the layout has " + std::to_string(units.size()) + " exchange units; at most " +
                    std::to_string((allreduce_tag_limit - allreduce_tag_base) / 2) +
                    " fit the tag space: use larger buckets");
  for (std::size_t i = 0; i < units.size(); ++i) {
    units[i].tag = allreduce_tag_base + 2 * static_cast<int>(i);
  }
  return units;
}

/// `v` holds at least `n` elements (grows, never shrinks: no allocation once warm).
template <class T>
T* at_least(std::vector<T>& v, std::size_t n)
{
  if (v.size() < n) {
    v.resize(n);
  }
  return v.data();
}

template <class T>
host_span<const std::byte> bytes_of(const T* data, std::size_t count) noexcept
{
  return host_span<const std::byte>(reinterpret_cast<const std::byte*>(data), count * sizeof(T));
}

template <class T>
host_span<std::byte> writable_bytes_of(T* data, std::size_t count) noexcept
{
  return host_span<std::byte>(reinterpret_cast<std::byte*>(data), count * sizeof(T));
}

}  // namespace terse::detail

#pragma once
/// @file
/// `terse::sparse_aggregation`: how terse::allreduce combines the payloads of
/// a gather-only (sparse) codec, chosen at run time in
/// `allreduce_config::sparse`.
///
/// @code
/// terse::allreduce sync(transport, shape, terse::compress::topk{.density = 0.01f}, terse::feedback::residual{},
///                       terse::allreduce_options{.sparse = terse::sparse_aggregation::reduce_scatter});
/// @endcode

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>

#include <cstdint>
#include <ostream>
#include <string_view>

namespace terse {

/// How the allreduce aggregates the payloads of a gather-only (sparse) codec:
/// top-k, threshold, DGC. Other codecs ignore it. docs/collectives.md,
/// "Sparse aggregation: allgather or reduce-scatter", says when to pick each.
enum class sparse_aggregation : std::uint8_t {
  /// Every rank's payload to every rank, each decodes all W: the exact
  /// average of what the ranks sent, but each rank sends (W - 1) P(n) bytes.
  allgather,
  /// Sparse reduce-scatter then sparse allgather (SparCML; Ok-Topk): the
  /// owner of each of W index shards averages the W payloads of its shard and
  /// re-selects (re-encodes) it; each rank sends about 2 (W - 1)/W P(n)
  /// bytes. What re-selection drops is fed back into the owner's residual.
  /// Host buffers only.
  reduce_scatter,
};

constexpr std::string_view to_string(sparse_aggregation s) noexcept
{
  return s == sparse_aggregation::reduce_scatter ? "reduce_scatter" : "allgather";
}

inline std::ostream& operator<<(std::ostream& os, sparse_aggregation s)
{
  return os << to_string(s);
}

namespace detail {

/// The device path aggregates sparse codecs by allgather only: asking it for
/// the sparse reduce-scatter raises errc::unsupported (on every rank alike,
/// before anything is sent).
inline void check_device_aggregation(sparse_aggregation sparse, aggregation kind)
{
  TERSE_CHECK(sparse != sparse_aggregation::reduce_scatter || kind != aggregation::gather_only, errc::unsupported,
              "allreduce: sparse_aggregation::reduce_scatter is implemented for host buffers only; device buffers "
              "aggregate sparse codecs by allgather (set allreduce_config::sparse = sparse_aggregation::allgather, "
              "or average host buffers)");
}

}  // namespace detail
}  // namespace terse

#pragma once
/// @file
/// topology::graph: a (possibly time-varying) sequence of mixing rounds over
/// W ranks, the plan a gossip collective runs. Every round is a pure function
/// of (W, seed, round index, epoch), so all ranks compute the same plan
/// without talking. Notation: M is the round's mixing matrix (x_i <- sum_j
/// M[i][j] x_j), J = 11^T / W.

#include <terse/topology/detail/graph_spec.hpp>
#include <terse/topology/round.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

namespace terse::topology {

/// A value type: copies share the immutable plan, so copying a static graph
/// is two reference-count increments. Build one with the functions of
/// static_graphs.hpp and time_varying.hpp.
class graph {
 public:
  /// Used by the builders; `spec` must already be validated.
  explicit graph(std::shared_ptr<const detail::graph_spec> spec, std::uint64_t epoch = 0)
      : spec_(std::move(spec)), epoch_(epoch), rho_(std::make_shared<detail::rho_cache>())
  {
  }

  int world() const noexcept { return spec_->world; }
  /// e.g. "ring", "one-peer exponential".
  std::string_view name() const noexcept { return spec_->name; }
  stochasticity kind() const noexcept { return spec_->kind; }
  bool directed() const noexcept { return spec_->directed; }
  bool time_varying() const noexcept { return spec_->period != 1; }
  /// Rounds before the sequence repeats: 1 for static graphs, 0 for random
  /// matchings (never repeats).
  std::size_t period() const noexcept { return spec_->period; }
  /// Carried into plan hashes and random draws.
  std::uint64_t epoch() const noexcept { return epoch_; }
  graph with_epoch(std::uint64_t e) const { return graph(spec_, e); }

  /// Round t, reusing out's capacity.
  void round(std::uint64_t t, mixing_round& out) const;
  mixing_round round(std::uint64_t t) const
  {
    mixing_round out;
    round(t, out);
    return out;
  }
  /// Rank `rank`'s share of round t: O(degree) for static and one-peer
  /// graphs (O(W) for random matchings, which redraw the shuffle); allocates
  /// nothing once out has capacity.
  void round_for(int rank, std::uint64_t t, rank_round& out) const;

  /// Equal on two ranks iff they would run the same round t of the same plan
  /// (kind, W, weights, seed, epoch, t mod period).
  std::uint64_t plan_hash(std::uint64_t t) const noexcept;
  /// The most sends (and the most recvs) any rank has in any round.
  std::size_t max_degree() const noexcept { return spec_->max_degree; }
  /// Static: ||M - J||_2. Periodic: ||M_{p-1}...M_0 - J||_2 over one period
  /// (0 when the product is J to 1e-12). Random matchings: the same over the
  /// first 16 rounds of this epoch, an estimate. O(W^3) on first call, then
  /// cached (thread-safe).
  double rho() const;

 private:
  std::uint64_t phase(std::uint64_t t) const noexcept { return spec_->period == 0 ? t : t % spec_->period; }

  std::shared_ptr<const detail::graph_spec> spec_;
  std::uint64_t epoch_ = 0;
  std::shared_ptr<detail::rho_cache> rho_;
};

}  // namespace terse::topology

#include <terse/topology/detail/graph.inl>

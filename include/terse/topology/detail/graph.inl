// graph's out-of-line members, included at the end of graph.hpp.
#pragma once

#include <terse/core/error.hpp>
#include <terse/topology/detail/graph_spec.hpp>
#include <terse/topology/detail/random_matching.hpp>
#include <terse/topology/detail/spectral.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace terse::topology {

namespace detail {

/// k = t mod tau of the one-peer exponential graph, and its offset 2^k mod W.
inline int one_peer_offset(const graph_spec& spec, std::uint64_t t) noexcept
{
  return static_cast<int>((std::uint64_t{1} << (t % spec.period)) % static_cast<std::uint64_t>(spec.world));
}

inline int wrap(int r, int world) noexcept
{
  return ((r % world) + world) % world;
}

}  // namespace detail

inline void graph::round(std::uint64_t t, mixing_round& out) const
{
  const detail::graph_spec& spec = *spec_;
  const auto w = static_cast<std::size_t>(spec.world);
  if (spec.source == detail::family::precomputed) {
    out = spec.rounds[phase(t)];  // element-wise assignment keeps out's buffers
    return;
  }
  out.world = spec.world;
  if (spec.world == 1) {
    out.self_weight.assign(1, 1.0);
    out.permutations.clear();
    return;
  }
  out.permutations.resize(1);
  permutation& p = out.permutations.front();
  p.send_to.assign(w, -1);
  p.weight.assign(w, 0.5);
  out.self_weight.assign(w, 0.5);
  if (spec.source == detail::family::one_peer_exponential) {
    const int offset = detail::one_peer_offset(spec, t);
    for (int r = 0; r < spec.world; ++r) {
      p.send_to[static_cast<std::size_t>(r)] = detail::wrap(r - offset, spec.world);
    }
    return;
  }
  std::vector<int>& order = detail::matching_scratch();
  detail::draw_matching_order(spec.world, spec.seed, epoch_, t, order);
  for (std::size_t i = 0; i + 1 < w; i += 2) {
    p.send_to[static_cast<std::size_t>(order[i])] = order[i + 1];
    p.send_to[static_cast<std::size_t>(order[i + 1])] = order[i];
  }
  if (w % 2 == 1) {
    out.self_weight[static_cast<std::size_t>(order.back())] = 1.0;
    p.weight[static_cast<std::size_t>(order.back())] = 0.0;
  }
}

inline void graph::round_for(int rank, std::uint64_t t, rank_round& out) const
{
  const detail::graph_spec& spec = *spec_;
  TERSE_EXPECTS(rank >= 0 && rank < spec.world, "rank must be in [0, world)");
  out.sends.clear();
  out.recvs.clear();
  if (spec.source == detail::family::precomputed) {
    const rank_round& source = spec.by_rank[phase(t)][static_cast<std::size_t>(rank)];
    out.self_weight = source.self_weight;
    out.sends.insert(out.sends.end(), source.sends.begin(), source.sends.end());
    out.recvs.insert(out.recvs.end(), source.recvs.begin(), source.recvs.end());
    return;
  }
  out.self_weight = 1.0;
  if (spec.world == 1) {
    return;
  }
  if (spec.source == detail::family::one_peer_exponential) {
    const int offset = detail::one_peer_offset(spec, t);
    out.self_weight = 0.5;
    out.sends.push_back({detail::wrap(rank - offset, spec.world), 0.5});
    out.recvs.push_back({detail::wrap(rank + offset, spec.world), 0.5});
    return;
  }
  std::vector<int>& order = detail::matching_scratch();
  detail::draw_matching_order(spec.world, spec.seed, epoch_, t, order);
  const auto at = static_cast<std::size_t>(std::find(order.begin(), order.end(), rank) - order.begin());
  const std::size_t mate = at ^ 1u;
  if (mate < order.size()) {
    out.self_weight = 0.5;
    out.sends.push_back({order[mate], 0.5});
    out.recvs.push_back({order[mate], 0.5});
  }
}

inline std::uint64_t graph::plan_hash(std::uint64_t t) const noexcept
{
  std::uint64_t h = detail::hash_combine(spec_->weights_hash, static_cast<std::uint64_t>(spec_->source));
  h = detail::hash_combine(h, static_cast<std::uint64_t>(spec_->world));
  h = detail::hash_combine(h, static_cast<std::uint64_t>(spec_->kind));
  h = detail::hash_combine(h, spec_->seed);
  h = detail::hash_combine(h, epoch_);
  return detail::hash_combine(h, phase(t));
}

inline double graph::rho() const
{
  std::call_once(rho_->once, [this] {
    constexpr std::uint64_t random_horizon = 16;
    const std::uint64_t rounds = spec_->period == 0 ? random_horizon : spec_->period;
    mixing_round scratch;
    round(0, scratch);
    detail::dense_matrix product = scratch.dense();
    for (std::uint64_t t = 1; t < rounds; ++t) {
      round(t, scratch);
      product = detail::multiply(scratch.dense(), product);
    }
    double value = detail::distance_from_average(std::move(product));
    if (rounds > 1 && value < 1e-12) {
      value = 0.0;  // the product is J up to rounding: finite-time exact averaging
    }
    rho_->value = value;
  });
  return rho_->value;
}

}  // namespace terse::topology

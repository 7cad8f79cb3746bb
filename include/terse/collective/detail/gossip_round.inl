#pragma once
// One gossip round of terse::gossip (collective/gossip.hpp): post the
// round's messages, then mix what arrived. Nothing the caller or the mixer
// owns changes until every frame of the round has arrived and checked out.

namespace terse {

template <class V, class M, class T, class S>
gossip<V, M, T, S>::gossip(T& transport, std::size_t count, topology::graph graph, gossip_options options,
                           std::type_identity_t<M> mixer, std::type_identity_t<S> schedule)
    : transport_(&transport),
      count_(count),
      graph_(std::move(graph)),
      options_(options),
      mixer_(std::move(mixer)),
      schedule_(std::move(schedule)),
      base_graph_(graph_)
{
  check_graph();
  check_failure_policy();
  guard_.growth = options_.divergence_growth;
  guard_.patience = options_.divergence_patience;
  TERSE_EXPECTS(options_.divergence_growth >= 1.0, "the divergence growth factor is at least 1");
  TERSE_EXPECTS(options_.probe_every == 0 || has_collectives, "probes need a transport with collective verbs");
  if constexpr (is_choco) {
    static_assert(!concepts::self_reducing_compressor<typename M::codec_type, T>,
                  "mixer::choco: PowerSGD needs every rank's matrix; use another codec");
    TERSE_EXPECTS(mixer_.gamma > 0.0 && mixer_.gamma <= 1.0, "CHOCO's consensus step is in (0, 1]");
    TERSE_EXPECTS(mixer_.scale >= 0.0, "CHOCO's scale is positive (or 0: automatic)");
    public_.assign(count_, V{0});
    sum_.assign(count_, V{0});
  }
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::check_graph() const
{
  const int ranks = members_.empty() ? transport_->size() : static_cast<int>(members_.size());
  TERSE_EXPECTS(graph_.world() == ranks, "the topology has " + std::to_string(graph_.world()) +
                                             " ranks and the transport " + std::to_string(ranks) +
                                             (members_.empty() ? "" : " survivors"));
  if constexpr (std::is_same_v<M, mixer::push_sum>) {
    TERSE_EXPECTS(graph_.kind() != topology::stochasticity::row,
                  "push-sum needs column-stochastic weights (each sender splits its mass)");
  } else if constexpr (is_choco) {
    TERSE_EXPECTS(graph_.kind() == topology::stochasticity::doubly, "CHOCO needs doubly stochastic weights");
    TERSE_EXPECTS(!graph_.time_varying(), "CHOCO's memory-efficient form keeps s = sum_j M_ij x^_j: a static graph");
  } else {
    TERSE_EXPECTS(graph_.kind() != topology::stochasticity::column,
                  "averaging needs row- or doubly-stochastic weights; use push-sum on a column-stochastic graph");
  }
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::set_graph(topology::graph graph)
{
  TERSE_EXPECTS(!pending_, "set_graph: a round is in flight");
  TERSE_EXPECTS(members_.empty(), "set_graph: the gossip runs over the survivors of a failure");
  std::swap(graph_, graph);
  try {
    check_graph();
  } catch (...) {
    std::swap(graph_, graph);
    throw;
  }
  base_graph_ = graph_;
}

template <class V, class M, class T, class S>
sync_action gossip<V, M, T, S>::on_parameters(host_span<V> parameters)
{
  const step_context ctx{parameter_calls_};
  sync_action action = sync_action::average;
  if constexpr (!std::is_same_v<S, schedule::every_step>) {
    action = schedule_.on_parameters(ctx);
  }
  if (action == sync_action::average) {
    mix(parameters);
  }
  ++parameter_calls_;
  return action;
}

template <class V, class M, class T, class S>
std::size_t gossip<V, M, T, S>::payload_room() const
{
  if constexpr (is_choco) {
    return mixer_.codec.max_encoded_bytes(count_);
  } else if constexpr (std::is_same_v<M, mixer::push_sum>) {
    return (count_ + 1) * sizeof(V);
  } else {
    return count_ * sizeof(V);
  }
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::agree_on_plan(std::uint64_t hash)
{
  if constexpr (has_collectives) {
    // max(h) and max(~h) = ~min(h): equal on every rank, and ~ of each other
    // only when every rank holds the same h.
    std::uint64_t both[2] = {hash, ~hash};
    transport_->allreduce(host_span<std::uint64_t>(both, 2), reduce_op::max);
    TERSE_CHECK(both[0] == ~both[1], errc::mismatch,
                "ranks run different gossip rounds (topology, epoch or round number differ) at round " +
                    std::to_string(rounds_));
  } else {
    (void)hash;  // frames still carry the hash: a neighbour with another plan raises mismatch
  }
}

template <class V, class M, class T, class S>
codec_context gossip<V, M, T, S>::codec_ctx(int rank) const noexcept
{
  codec_context ctx;
  ctx.seed = options_.seed;
  ctx.step = rounds_;
  ctx.rank = rank;
  ctx.world = transport_->size();
  return ctx;
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::start(host_span<const V> values)
{
  TERSE_EXPECTS(!pending_, "gossip::start: a round is in flight; wait for it first");
  TERSE_EXPECTS(values.size() == count_, "the buffer has " + std::to_string(values.size()) +
                                             " elements; this gossip mixes " + std::to_string(count_));
  graph_.round_for(members_.empty() ? transport_->rank() : member_index_, rounds_, plan_);
  if (!members_.empty()) {  // the survivors' graph numbers them 0..n-1
    for (topology::link& l : plan_.sends) {
      l.peer = members_[static_cast<std::size_t>(l.peer)];
    }
    for (topology::link& l : plan_.recvs) {
      l.peer = members_[static_cast<std::size_t>(l.peer)];
    }
  }
  const std::uint64_t hash = graph_.plan_hash(rounds_);
  if (options_.check_plan && !rerouting()) {  // a world collective: a dead rank would fail it
    agree_on_plan(hash);
  }
  expected_ = detail::gossip_header{detail::mixer_tag<M>(), 0, static_cast<std::uint8_t>(sizeof(V)), hash, rounds_, 0};
  frame_bytes_ = detail::gossip_header_bytes + payload_room();
  own_non_finite_ = false;
  if constexpr (is_choco) {
    post_choco(values);
  } else if constexpr (std::is_same_v<M, mixer::push_sum>) {
    post_push_sum(values);
  } else {
    post_average(values);
  }
  recvs_.clear();
  detail::at_least(recv_frames_, plan_.recvs.size() * frame_bytes_);
  for (std::size_t k = 0; k < plan_.recvs.size(); ++k) {
    recvs_.push_back(
        incoming<>{plan_.recvs[k].peer, host_span<std::byte>(recv_frames_.data() + k * frame_bytes_, frame_bytes_)});
  }
  id_ = transport_->start_exchange(host_span<const outgoing<>>(sends_.data(), sends_.size()),
                                   host_span<const incoming<>>(recvs_.data(), recvs_.size()), detail::gossip_tag);
  pending_ = true;
  exchange_done_ = false;
  report_.clear();
}

template <class V, class M, class T, class S>
bool gossip<V, M, T, S>::test()
{
  TERSE_EXPECTS(pending_, "gossip::test: no round in flight");
  if (exchange_done_) {
    return true;
  }
  try {
    // Once test() saw it complete, the id is spent: wait() must not ask again.
    if constexpr (reports_failures) {
      if (rerouting()) {
        exchange_done_ = transport_->test(id_, report_);
        return exchange_done_;
      }
    }
    exchange_done_ = transport_->test(id_);
    return exchange_done_;
  } catch (...) {
    pending_ = false;  // the id is spent
    throw;
  }
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::wait(host_span<V> values)
{
  TERSE_EXPECTS(pending_, "gossip::wait: no round in flight; call start first");
  TERSE_EXPECTS(values.size() == count_, "the buffer has " + std::to_string(values.size()) +
                                             " elements; this gossip mixes " + std::to_string(count_));
  pending_ = false;
  complete_exchange();
  bool non_finite = own_non_finite_;
  int culprit = transport_->rank();
  for (std::size_t k = 0; k < plan_.recvs.size(); ++k) {
    if (recv_failed_[k] != 0) {
      continue;  // a dead peer's frame never came
    }
    const auto frame = host_span<const std::byte>(recv_frames_.data() + k * frame_bytes_, frame_bytes_);
    const detail::gossip_header h = detail::read_gossip_header(frame, expected_, plan_.recvs[k].peer);
    if ((h.flags & detail::gossip_flag_non_finite) != 0 && !non_finite) {
      non_finite = true;
      culprit = plan_.recvs[k].peer;
    }
  }
  if (non_finite && !poisoned_) {
    TERSE_CHECK(options_.probe_every != 0, errc::diverged,
                "rank " + std::to_string(culprit) + " holds NaN or Inf at gossip round " + std::to_string(rounds_));
    poisoned_ = true;  // keep the rounds going so every rank learns at the next probe
  }
  if (!poisoned_) {  // a poisoned rank keeps its values as they were
    if constexpr (is_choco) {
      absorb_choco(values);
    } else if constexpr (std::is_same_v<M, mixer::push_sum>) {
      absorb_push_sum(values);
    } else {
      absorb_average(values);
    }
  }
  ++rounds_;
  if (rerouting() && options_.membership_every != 0 && rounds_ % options_.membership_every == 0) {
    agree_on_membership();
  }
  if (options_.probe_every != 0 && rounds_ % options_.probe_every == 0) {
    probe(host_span<const V>(values.data(), values.size()));
  }
}

template <class V, class M, class T, class S>
host_span<const std::byte> gossip<V, M, T, S>::frame_payload(std::size_t k) const
{
  const std::byte* frame = recv_frames_.data() + k * frame_bytes_;
  std::uint64_t bytes = 0;
  std::memcpy(&bytes, frame + 24, 8);
  return host_span<const std::byte>(frame + detail::gossip_header_bytes, static_cast<std::size_t>(bytes));
}

// --- probes ------------------------------------------------------------------------

template <class V, class M, class T, class S>
double gossip<V, M, T, S>::consensus_distance(host_span<const V> values)
{
  static_assert(has_collectives, "consensus_distance needs a transport with collective verbs");
  TERSE_EXPECTS(values.size() == count_,
                "the buffer has " + std::to_string(values.size()) + " elements, not " + std::to_string(count_));
  return detail::exact_consensus_distance(*transport_, values, probe_mean_);
}

template <class V, class M, class T, class S>
double gossip<V, M, T, S>::consensus_estimate(host_span<const V> values)
{
  static_assert(has_collectives, "consensus_estimate needs a transport with collective verbs");
  TERSE_EXPECTS(values.size() == count_,
                "the buffer has " + std::to_string(values.size()) + " elements, not " + std::to_string(count_));
  TERSE_EXPECTS(options_.sketch_rows >= 1 && options_.sketch_columns >= 1, "the sketch has rows and columns");
  return detail::sketched_consensus_distance(*transport_, values, options_.seed, options_.sketch_rows,
                                             options_.sketch_columns, probe_sketch_);
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::probe(host_span<const V> values)
{
  if constexpr (has_collectives) {
    const double value =
        options_.probe == consensus_probe::exact
            ? detail::exact_consensus_distance(*transport_, values, probe_mean_, poisoned_)
            : detail::sketched_consensus_distance(*transport_, values, options_.seed, options_.sketch_rows,
                                                  options_.sketch_columns, probe_sketch_, poisoned_);
    guard_.observe(value);
  }
}

}  // namespace terse

#pragma once
// failure_policy::reroute of terse::gossip (collective/gossip.hpp): which
// messages of a round failed, and the membership agreement that moves the
// gossip onto the survivors' graph (docs/gossip.md, "Failures").

namespace terse {

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::check_failure_policy() const
{
  TERSE_EXPECTS(
      options_.on_peer_failure == failure_policy::raise || options_.on_peer_failure == failure_policy::reroute,
      "on_peer_failure is raise or reroute");
  if (!rerouting()) {
    return;
  }
  TERSE_CHECK(!is_choco, errc::unsupported,
              "CHOCO cannot reroute around a failed peer (its s = sum_j M_ij x^_j holds the dead rank's x^); use "
              "failure_policy::raise, or mixer::average or mixer::push_sum");
  if constexpr (reports_failures) {
    TERSE_EXPECTS(transport_->options().failures == failure_scope::peer,
                  "failure_policy::reroute needs a transport built with failures = failure_scope::peer");
  } else {
    TERSE_FAIL(errc::unsupported,
               "failure_policy::reroute needs a transport whose exchanges report failed peers "
               "(the local transport with failure_scope::peer)");
  }
}

/// Completes the round's exchange (unless test() already did) and notes
/// which of its messages failed: none unless rerouting (a failure raises
/// instead).
template <class V, class M, class T, class S>
void gossip<V, M, T, S>::complete_exchange()
{
  // report_ was emptied when the round was posted: a decorator (simulated
  // network) may have let an earlier test() complete the inner exchange and
  // fill it, and then reports completion only later.
  if (!exchange_done_) {  // else test() completed it (and filled report_)
    if constexpr (reports_failures) {
      if (rerouting()) {
        transport_->wait(id_, report_);
      } else {
        transport_->wait(id_);
      }
    } else {
      transport_->wait(id_);
    }
  }
  exchange_done_ = false;
  send_failed_.assign(plan_.sends.size(), 0);  // keeps capacity: no allocation once warm
  recv_failed_.assign(plan_.recvs.size(), 0);
  if (!report_.any()) {
    return;
  }
  known_dead_.resize(static_cast<std::size_t>(transport_->size()), 0);
  for (std::size_t k : report_.failed_sends) {
    send_failed_[k] = 1;
    known_dead_[static_cast<std::size_t>(plan_.sends[k].peer)] = 1;
  }
  for (std::size_t k : report_.failed_recvs) {
    recv_failed_[k] = 1;
    known_dead_[static_cast<std::size_t>(plan_.recvs[k].peer)] = 1;
  }
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::agree_on_membership()
{
  TERSE_EXPECTS(rerouting(), "agree_on_membership needs failure_policy::reroute");
  TERSE_EXPECTS(!pending_, "agree_on_membership: a round is in flight");
  if constexpr (reports_failures) {
    const auto world = static_cast<std::size_t>(transport_->size());
    known_dead_.resize(world, 0);
    detail::membership_result agreed = detail::agree_on_membership(*transport_, known_dead_, agreements_++);
    known_dead_ = std::move(agreed.dead);
    std::vector<int> dead;
    for (std::size_t r = 0; r < world; ++r) {
      if (known_dead_[r] != 0) {
        dead.push_back(static_cast<int>(r));
      }
    }
    const std::size_t alive_now = members_.empty() ? world : members_.size();
    if (world - dead.size() == alive_now) {
      return;  // nobody new: keep the graph
    }
    topology::survivor_graph next = topology::survivors(base_graph_, dead, options_.backup_edges);
    TERSE_CHECK(!next.partitioned, errc::peer_failed,
                "the survivors of '" + std::string(base_graph_.name()) + "' are partitioned after " +
                    std::to_string(dead.size()) + " failure(s)" +
                    (options_.backup_edges ? " even with backup edges" : "; enable gossip_options::backup_edges"));
    const std::uint64_t epoch = graph_.epoch() + 1;
    graph_ = next.mixing->with_epoch(epoch);
    members_ = std::move(next.ranks);
    member_index_ =
        static_cast<int>(std::find(members_.begin(), members_.end(), transport_->rank()) - members_.begin());
  }
}

}  // namespace terse

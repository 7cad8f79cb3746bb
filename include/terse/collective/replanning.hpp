#pragma once
/// @file
/// `terse::replanner`: re-plans a gossip topology from what the ranks
/// measured. Each rank declares its step time and the bandwidth it achieved
/// to its neighbours (measured by the trainer, declared by a test, or read
/// off a modelled network); `exchange(transport)` agrees on every rank's
/// record with one allgather and returns the plan every rank computes from
/// the same table (topology/planner.hpp): no broadcast, and the plan hash
/// is compared when `check_plan` is on.
///
/// @code
/// terse::gossip mix(transport, n, terse::topology::ring(W));
/// terse::replanner planner(mix.graph());
/// for (step = 0; ...; ++step) {
///   ... train, mix.on_parameters(params) ...
///   planner.declare_step_seconds(step_time);
///   planner.declare_link(peer, bytes_per_second);      // for each neighbour measured
///   if (step % 100 == 99) terse::replan(mix, planner);  // a collective: every rank calls it
/// }
/// terse::save_planned(out, mix, planner);  // the agreed inputs too: load re-plans the same graph
/// @endcode
///
/// Cost of an exchange: one allgather of W + 1 doubles per rank (a rank
/// sends 8(W + 1) bytes and receives 8W(W + 1): 72 and 576 bytes at W = 8),
/// plus, with check_plan, one allreduce of two integers; then O(W^3) of
/// planning and of rho on every rank.

#include <terse/core/error.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/verbs.hpp>
#include <terse/topology/graph.hpp>
#include <terse/topology/planner.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace terse {

struct replan_options {
  topology::planner_options planner{};
  /// Keys the planner's tie-breaking draws; the same on every rank.
  std::uint64_t seed = 0x7e55e;
  /// Compare the new plan's hash across ranks (one allreduce of two integers).
  bool check_plan = TERSE_CHECKED_DEFAULT;
};

/// One allgather of every rank's record (step seconds, then W bandwidths):
/// returns the table every rank now holds. A collective.
template <class Transport>
topology::measurements exchange_measurements(Transport& transport, double step_seconds,
                                             const std::vector<double>& links)
{
  const int world = transport.size();
  const auto w = static_cast<std::size_t>(world);
  TERSE_EXPECTS(links.size() == w, "a measurement record has one bandwidth per rank");
  std::vector<double> mine(w + 1);
  mine[0] = step_seconds;
  std::copy(links.begin(), links.end(), mine.begin() + 1);
  std::vector<double> all(w * (w + 1));
  transport.allgather(host_span<const double>(mine.data(), mine.size()), host_span<double>(all.data(), all.size()));
  topology::measurements m = topology::measurements::unknown(world);
  for (std::size_t r = 0; r < w; ++r) {
    m.step_seconds[r] = all[r * (w + 1)];
    for (std::size_t j = 0; j < w; ++j) {
      m.link_bytes_per_s[r * w + j] = all[r * (w + 1) + 1 + j];
    }
  }
  m.validate();  // after the allgather: every rank sees the same table, so all raise alike
  return m;
}

/// Holds this rank's declared measurements and the agreed table of the
/// last exchange, and plans epoch after epoch.
class replanner {
 public:
  /// @param initial the topology in use before the first exchange (its world)
  explicit replanner(topology::graph initial, int rank, replan_options options = {})
      : initial_(std::move(initial)),
        rank_(rank),
        options_(options),
        links_(static_cast<std::size_t>(initial_.world()), 0.0)
  {
    TERSE_EXPECTS(rank >= 0 && rank < initial_.world(), "replanner: rank must be in [0, world)");
  }

  /// What this rank measured since the last exchange (the latest value wins).
  void declare_step_seconds(double seconds) { step_seconds_ = seconds; }
  void declare_link(int peer, double bytes_per_s)
  {
    TERSE_EXPECTS(peer >= 0 && peer < initial_.world(), "declare_link: peer must be in [0, world)");
    links_[static_cast<std::size_t>(peer)] = peer == rank_ ? 0.0 : bytes_per_s;
  }
  /// `bytes` reached `peer` in `seconds`.
  void observe_link(int peer, double bytes, double seconds)
  {
    TERSE_EXPECTS(seconds > 0.0, "observe_link: seconds must be positive");
    declare_link(peer, bytes / seconds);
  }

  /// A collective: agrees on the records, plans the next epoch, compares the
  /// plan hash (check_plan) and returns the plan. Raises (on every rank
  /// alike) invalid_argument for a record that is not finite and >= 0, and
  /// mismatch when ranks planned different graphs; nothing changes then.
  template <class Transport>
  const topology::plan& exchange(Transport& transport)
  {
    TERSE_EXPECTS(transport.size() == initial_.world() && transport.rank() == rank_,
                  "replanner: the transport's world and rank differ from the replanner's");
    topology::measurements agreed = exchange_measurements(transport, step_seconds_, links_);
    topology::plan next = topology::plan_topology(agreed, options_.planner, options_.seed, epoch() + 1);
    if (options_.check_plan) {
      const std::uint64_t h = next.topology.plan_hash(0);
      std::uint64_t both[2] = {h, ~h};
      transport.allreduce(host_span<std::uint64_t>(both, 2), reduce_op::max);
      TERSE_CHECK(both[0] == ~both[1], errc::mismatch,
                  "ranks planned different topologies at epoch " + std::to_string(next.epoch));
    }
    agreed_ = std::move(agreed);
    current_ = std::move(next);
    return *current_;
  }

  /// The topology to gossip on now: the last plan, or the initial graph.
  const topology::graph& topology() const noexcept { return current_ ? current_->topology : initial_; }
  const topology::graph& initial() const noexcept { return initial_; }
  /// 0 before the first exchange, then 1, 2, ...
  std::uint64_t epoch() const noexcept { return current_ ? current_->epoch : 0; }
  const std::optional<topology::plan>& current() const noexcept { return current_; }
  /// The table of the last exchange (empty before it).
  const topology::measurements& agreed() const noexcept { return agreed_; }
  const replan_options& options() const noexcept { return options_; }

  /// Saves the epoch, the agreed table and this rank's pending record.
  void save(std::ostream& out) const
  {
    state_writer w(out);
    w.section("terse::replanner");
    w.value(state_version);
    w.value(static_cast<std::int32_t>(initial_.world()));
    w.value(static_cast<std::int32_t>(rank_));
    w.value(epoch());
    w.value(step_seconds_);
    w.array(host_span<const double>(links_.data(), links_.size()));
    if (current_) {
      w.array(host_span<const double>(agreed_.step_seconds.data(), agreed_.step_seconds.size()));
      w.array(host_span<const double>(agreed_.link_bytes_per_s.data(), agreed_.link_bytes_per_s.size()));
    }
  }

  /// Reads what save() wrote and re-plans from the saved table (the same
  /// bits as before); all or nothing: errc::io for another world or rank or
  /// a short or corrupt blob, and then nothing changes.
  void load(std::istream& in) { commit(stage(in)); }

  /// What load() would set, read and re-planned but not yet applied (so a
  /// caller can load more state and apply only if all of it loaded).
  struct staged {
    std::uint64_t epoch = 0;
    double step_seconds = 0.0;
    std::vector<double> links;
    topology::measurements agreed;
    std::optional<topology::plan> plan;
  };
  staged stage(std::istream& in) const
  {
    const int world = initial_.world();
    const auto w = static_cast<std::size_t>(world);
    state_reader r(in);
    r.limit_arrays(w * w);
    r.section("terse::replanner");
    TERSE_CHECK(r.value<std::uint32_t>() == state_version, errc::io, "replanner state has another version");
    TERSE_CHECK(r.value<std::int32_t>() == world, errc::io, "replanner state was saved by another world");
    TERSE_CHECK(r.value<std::int32_t>() == rank_, errc::io, "replanner state was saved by another rank");
    staged s;
    s.epoch = r.value<std::uint64_t>();
    s.step_seconds = r.value<double>();
    s.links.resize(w);
    r.array(host_span<double>(s.links.data(), w));
    if (s.epoch > 0) {
      s.agreed = topology::measurements::unknown(world);
      r.array(host_span<double>(s.agreed.step_seconds.data(), w));
      r.array(host_span<double>(s.agreed.link_bytes_per_s.data(), w * w));
      try {
        s.plan = topology::plan_topology(s.agreed, options_.planner, options_.seed, s.epoch);
      } catch (const error& e) {
        TERSE_FAIL(errc::io, std::string("replanner state holds measurements that do not plan: ") + e.what());
      }
    }
    return s;
  }
  void commit(staged s) noexcept
  {
    step_seconds_ = s.step_seconds;
    links_ = std::move(s.links);
    agreed_ = std::move(s.agreed);
    current_ = std::move(s.plan);
  }

 private:
  static constexpr std::uint32_t state_version = 1;

  topology::graph initial_;
  int rank_;
  replan_options options_;
  double step_seconds_ = 0.0;
  std::vector<double> links_;
  topology::measurements agreed_;
  std::optional<topology::plan> current_;
};

/// Exchanges measurements and switches `mix` to the new plan (a collective).
template <class Gossip>
const topology::plan& replan(Gossip& mix, replanner& planner)
{
  TERSE_EXPECTS(!mix.in_flight(), "replan: a gossip round is in flight; wait for it first");
  const topology::plan& p = planner.exchange(mix.transport());
  mix.set_graph(p.topology);
  return p;
}

/// The replanner's state, then the gossip's.
template <class Gossip>
void save_planned(std::ostream& out, const Gossip& mix, const replanner& planner)
{
  planner.save(out);
  mix.save(out);
}

/// Loads what save_planned wrote: `mix` gossips on the saved epoch's plan
/// again. All or nothing.
template <class Gossip>
void load_planned(std::istream& in, Gossip& mix, replanner& planner)
{
  replanner::staged s = planner.stage(in);
  mix.load(in);
  mix.set_graph(s.plan ? s.plan->topology : planner.initial().with_epoch(mix.graph().epoch()));
  planner.commit(std::move(s));
}

}  // namespace terse

#pragma once
/// @file
/// `terse::gossip<Value, Mixer, Transport, Schedule>`: decentralized
/// averaging. Each rank mixes its model with its neighbours' over a
/// topology round (topology/graph.hpp) instead of joining a global
/// allreduce, so a round's latency does not grow with the world and no
/// rank waits for all the others.
///
/// @code
/// terse::gossip mix(transport, params.size(), terse::topology::exponential(world));
/// for (each step) {
///   forward_backward(params, grads);
///   optimizer_step(params, grads);
///   mix.on_parameters(terse::host_span<float>(params));   // x_i <- sum_j M_ij x_j (D-PSGD)
/// }
/// // or overlapped: mix.start(params); compute gradients; step; mix.wait(params);
/// @endcode
///
/// Mixers (collective/mixers.hpp): `mixer::average` (D-PSGD),
/// `mixer::push_sum` (SGP, any column-stochastic directed or time-varying
/// graph) and `mixer::choco<Codec>` (compressed, with any terse codec).
/// Values are float or double (`terse::elements<double>{}` picks double).
///
/// A round is one grouped exchange: one message per permutation of the
/// round, all posted at once. A round that fails (timeout, a dead peer, a
/// frame of another round or plan, a malformed payload) raises on the rank
/// that saw it and changes nothing there: not the caller's values, not the
/// mixer's state, not the round counter. Non-finite values are never mixed
/// in: without probes, a rank whose values or whose neighbour's values hold
/// NaN or Inf raises errc::diverged at once; with `probe_every` set, such a
/// rank stops mixing (its values stay as they were), flags its frames so
/// its neighbours do the same, and at the next probe every rank raises
/// errc::diverged together, as it does when the consensus distance keeps
/// growing (docs/gossip.md).

#include <terse/collective/detail/choco_scale.hpp>
#include <terse/collective/detail/consensus.hpp>
#include <terse/collective/detail/gossip_frame.hpp>
#include <terse/collective/detail/membership.hpp>
#include <terse/collective/detail/policy_arguments.hpp>
#include <terse/collective/detail/state_snapshot.hpp>
#include <terse/collective/detail/step_unit.hpp>
#include <terse/collective/mixers.hpp>
#include <terse/core/concept_checks.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/state_io.hpp>
#include <terse/schedule/every_step.hpp>
#include <terse/topology/graph.hpp>
#include <terse/topology/survivors.hpp>
#include <terse/transport/local.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace terse {

/// How the consensus distance is probed.
enum class consensus_probe : std::uint8_t {
  exact,   ///< one dense allreduce of the model
  sketch,  ///< one allreduce of an AMS sketch (1 + rows·columns doubles), never below the truth w.h.p.
};

/// What a gossip collective does when a peer fails (docs/gossip.md, "Failures").
enum class failure_policy : std::uint8_t {
  raise,    ///< the round raises errc::peer_failed (a terse::peer_error naming the peer where the transport can)
  reroute,  ///< go on over the survivors; needs a transport with failure_scope::peer
};

/// Tunable numbers of a gossip collective.
struct gossip_options {
  /// Shared by all ranks: keys the codec's draws (CHOCO) with the round.
  std::uint64_t seed = 0x7e55e;
  /// Probe the consensus distance after every `probe_every` rounds (0:
  /// never). A probe is a collective: every rank takes part.
  std::uint64_t probe_every = 0;
  consensus_probe probe = consensus_probe::sketch;
  std::uint32_t sketch_rows = 5;
  std::uint32_t sketch_columns = 250;
  /// errc::diverged when the probe grows by more than this factor...
  double divergence_growth = 1.5;
  /// ...this many probes in a row (0: only non-finite probes diverge).
  std::uint32_t divergence_patience = 3;
  /// Agree on every round's plan (one allreduce of two integers), so ranks
  /// running different topologies or rounds raise errc::mismatch together
  /// instead of timing out.
  bool check_plan = TERSE_CHECKED_DEFAULT;
  /// failure_policy::reroute: a share for a dead peer stays with its sender
  /// (push-sum), a dead neighbour's weight goes to self (averaging), and the
  /// survivors agree on the membership every `membership_every` rounds, then
  /// mix over topology::survivors of the graph. The plan check (a world
  /// collective) is skipped. CHOCO refuses it (errc::unsupported).
  failure_policy on_peer_failure = failure_policy::raise;
  std::uint64_t membership_every = 8;
  /// reroute: switch on backup edges where the survivors would be partitioned.
  bool backup_edges = true;

  friend std::ostream& operator<<(std::ostream& os, const gossip_options& o)
  {
    return os << "{seed=" << o.seed << ", probe_every=" << o.probe_every
              << ", probe=" << (o.probe == consensus_probe::exact ? "exact" : "sketch")
              << ", divergence_growth=" << o.divergence_growth << ", divergence_patience=" << o.divergence_patience
              << ", check_plan=" << o.check_plan
              << ", on_peer_failure=" << (o.on_peer_failure == failure_policy::raise ? "raise" : "reroute")
              << ", membership_every=" << o.membership_every << ", backup_edges=" << o.backup_edges << '}';
  }
};

/// Picks the value type of a gossip collective: `terse::elements<double>{}`.
template <class T>
struct elements {
  using type = T;
};

namespace detail {
template <class A>
struct is_elements : std::false_type {
};
template <class T>
struct is_elements<elements<T>> : std::true_type {
};

enum class gossip_arg { none, options, mixer, schedule, elements };

template <class A>
constexpr gossip_arg gossip_arg_kind() noexcept
{
  using P = std::remove_cvref_t<A>;
  if constexpr (std::is_same_v<P, gossip_options>) {
    return gossip_arg::options;
  } else if constexpr (gossip_mixer<P>) {
    return gossip_arg::mixer;
  } else if constexpr (is_elements<P>::value) {
    return gossip_arg::elements;
  } else if constexpr (concepts::schedule<P>) {
    return gossip_arg::schedule;
  } else {
    return gossip_arg::none;
  }
}

/// CHOCO's codec keeps state to save (DGC's thresholds, say).
template <class M>
struct codec_keeps_state : std::false_type {
};
template <class C>
struct codec_keeps_state<mixer::choco<C>> : std::bool_constant<saves_state<C> && loads_state<C>> {
};

template <class... Args>
concept gossip_arguments = ((gossip_arg_kind<Args>() != gossip_arg::none) && ...) &&
                           ((gossip_arg_kind<Args>() == gossip_arg::options) + ... + 0) <= 1 &&
                           ((gossip_arg_kind<Args>() == gossip_arg::mixer) + ... + 0) <= 1 &&
                           ((gossip_arg_kind<Args>() == gossip_arg::schedule) + ... + 0) <= 1 &&
                           ((gossip_arg_kind<Args>() == gossip_arg::elements) + ... + 0) <= 1;

template <gossip_arg K, class Default, class... Args>
struct gossip_arg_of {
  using type = Default;
};
template <gossip_arg K, class Default, class A, class... Rest>
struct gossip_arg_of<K, Default, A, Rest...> {
  using type = std::conditional_t<gossip_arg_kind<A>() == K, std::remove_cvref_t<A>,
                                  typename gossip_arg_of<K, Default, Rest...>::type>;
};

}  // namespace detail

/// Mixes a vector of `Value`s with the neighbours of a topology round.
///
/// @tparam Value     float or double: the trainer's parameters
/// @tparam Mixer     mixer::average, mixer::push_sum or mixer::choco<Codec>
/// @tparam Transport a transport with grouped exchanges (and collective
///                   verbs for probes and plan checks)
/// @tparam Schedule  when to gossip: schedule::every_step (after every
///                   optimizer step) or schedule::periodic{H} (local SGD
///                   with gossip instead of an allreduce)
template <class Value = float, class Mixer = mixer::average, class Transport = local_transport,
          class Schedule = schedule::every_step>
class gossip {
  static_assert(std::is_same_v<Value, float> || std::is_same_v<Value, double>,
                "terse::gossip: values are float or double");
  static_assert(detail::gossip_mixer<Mixer>, "terse::gossip: Mixer is mixer::average, mixer::push_sum or mixer::choco");
  static_assert(concepts::check_exchanging_transport<Transport, memory_space::host>());
  static_assert(concepts::check_schedule<Schedule>());
  static constexpr bool is_choco = detail::is_choco<Mixer>::value;
  static constexpr bool codec_keeps_state = detail::codec_keeps_state<Mixer>::value;
  static constexpr bool has_collectives = concepts::collective_transport<Transport, memory_space::host>;
  static constexpr bool reports_failures = detail::reports_peer_failures<Transport>;

 public:
  using value_type = Value;
  using mixer_type = Mixer;

  /// @param transport the communicator, owned by the caller, outliving this object
  /// @param count     elements of the vectors mixed later
  /// @param graph     the topology over transport.size() ranks
  /// (The mixer and schedule are not deduced from this form: the guide
  /// below deduces them from arguments in any order.)
  gossip(Transport& transport, std::size_t count, topology::graph graph, gossip_options options = {},
         std::type_identity_t<Mixer> mixer = {}, std::type_identity_t<Schedule> schedule = {});

  /// The options, mixer, schedule and value type in any order, each at most once.
  template <class... Args>
  requires(sizeof...(Args) > 0 && detail::gossip_arguments<Args...>)
      gossip(Transport& transport, std::size_t count, topology::graph graph, Args&&... args)
      : gossip(transport, count, std::move(graph), detail::pick_policy<gossip_options>(args...),
               detail::pick_policy<Mixer>(std::forward<Args>(args)...),
               detail::pick_policy<Schedule>(std::forward<Args>(args)...))
  {
  }

  gossip(gossip&&) noexcept = default;
  gossip& operator=(gossip&&) noexcept = default;
  gossip(const gossip&) = delete;
  gossip& operator=(const gossip&) = delete;
  ~gossip() = default;

  /// After the optimizer step: gossips when the schedule asks for it.
  sync_action on_parameters(host_span<Value> parameters);

  /// One round now: start, then wait.
  void mix(host_span<Value> values)
  {
    start(values);
    wait(values);
  }

  /// Posts a round with `values` as they are now; they may change (an
  /// optimizer step) before wait(), which adds the change to the mixed result.
  void start(host_span<const Value> values);
  /// Makes progress without blocking; true once the round's messages are in.
  bool test();
  /// Completes the round: `values` (the same buffer, possibly changed since
  /// start) becomes the mixed result plus whatever changed since start.
  void wait(host_span<Value> values);
  bool in_flight() const noexcept { return pending_; }

  /// (1/W) Σ_i ‖x_i − x̄‖², exactly: one dense allreduce of `values` (a
  /// collective: every rank calls it).
  double consensus_distance(host_span<const Value> values);
  /// The sketch estimate of the same (one allreduce of the sketch).
  double consensus_estimate(host_span<const Value> values);
  /// The last probe's value (negative before the first).
  double last_probe() const noexcept { return guard_.last; }

  /// Push-sum's weight w (1 for the other mixers).
  double weight() const noexcept { return weight_; }
  /// CHOCO's public copy x̂ of this rank (empty for the other mixers).
  host_span<const Value> public_copy() const noexcept { return {public_.data(), public_.size()}; }
  /// Rounds completed: round t of the graph runs next.
  std::uint64_t rounds() const noexcept { return rounds_; }
  const topology::graph& graph() const noexcept { return graph_; }
  /// Replaces the topology between rounds (a new epoch); the world must stay.
  /// Not after a failure was rerouted around.
  void set_graph(topology::graph graph);

  /// failure_policy::reroute: the ranks mixed among, ascending (empty: all).
  const std::vector<int>& members() const noexcept { return members_; }
  /// failure_policy::reroute: agrees with every survivor on the dead ranks
  /// now (wait() does it every options().membership_every rounds; every
  /// survivor must call it at the same round) and, if the set grew, mixes
  /// over the survivors from the next round on (epoch + 1). Raises
  /// errc::peer_failed when the agreement fails (this rank must then leave)
  /// or the survivors are partitioned.
  void agree_on_membership();
  std::size_t count() const noexcept { return count_; }
  const gossip_options& options() const noexcept { return options_; }
  Mixer& mixer() noexcept { return mixer_; }
  Schedule& schedule() noexcept { return schedule_; }
  Transport& transport() const noexcept { return *transport_; }

  /// Saves the round counter, push-sum weight, CHOCO's x̂ and s, the
  /// divergence probe, the topology epoch and the codec's and schedule's state.
  void save(std::ostream& out) const;
  /// Restores what save() wrote, all or nothing; a blob from another world,
  /// rank, size, mixer or value type raises errc::io.
  void load(std::istream& in);

 private:
  void check_graph() const;
  void check_failure_policy() const;
  bool rerouting() const noexcept { return options_.on_peer_failure == failure_policy::reroute; }
  void complete_exchange();
  void agree_on_plan(std::uint64_t hash);
  std::size_t payload_room() const;
  void post_average(host_span<const Value> values);
  void post_push_sum(host_span<const Value> values);
  void post_choco(host_span<const Value> values);
  void absorb_average(host_span<Value> values);
  void absorb_push_sum(host_span<Value> values);
  void absorb_choco(host_span<Value> values);
  void probe(host_span<const Value> values);
  host_span<const std::byte> frame_payload(std::size_t k) const;
  codec_context codec_ctx(int rank) const noexcept;

  Transport* transport_;
  std::size_t count_;
  topology::graph graph_;
  gossip_options options_;
  Mixer mixer_;
  Schedule schedule_;

  std::uint64_t rounds_ = 0;
  std::uint64_t parameter_calls_ = 0;
  double weight_ = 1.0;              // push-sum's w
  std::vector<Value> public_, sum_;  // CHOCO's x̂ and s
  detail::divergence_guard guard_;

  // The round in flight.
  bool pending_ = false;
  bool exchange_done_ = false;  // test() saw the exchange complete
  exchange_id id_{};
  detail::gossip_header expected_{};
  bool own_non_finite_ = false;
  bool poisoned_ = false;  // NaN or Inf reached this rank; raised at the next probe
  topology::rank_round plan_;
  std::size_t frame_bytes_ = 0;
  std::vector<std::byte> send_frames_, recv_frames_;
  std::vector<Value> sent_;                    // values at start (push-sum)
  std::vector<float> difference_, own_q_, q_;  // CHOCO scratch
  std::vector<Value> delta_sum_;               // CHOCO: Σ_j M_ij q_j this round
  std::vector<outgoing<>> sends_;
  std::vector<incoming<>> recvs_;
  std::vector<Value> probe_mean_;
  std::vector<double> probe_sketch_;
  detail::state_snapshot before_load_;

  // failure_policy::reroute
  topology::graph base_graph_;  // the graph over all ranks, as given
  std::vector<int> members_;    // survivors, ascending (empty: all ranks)
  int member_index_ = 0;        // this rank's place in members_
  std::vector<char> known_dead_;
  std::uint64_t agreements_ = 0;
  exchange_report report_;
  std::vector<char> send_failed_, recv_failed_;  // this round, by plan index
};

/// `gossip g(transport, count, graph, args...)` deduces the value type,
/// mixer and schedule from the arguments given.
template <class Transport, class... Args>
requires detail::gossip_arguments<Args...> gossip(Transport&, std::size_t, topology::graph, Args&&...)
->gossip<typename detail::gossip_arg_of<detail::gossip_arg::elements, elements<float>, Args...>::type::type,
         typename detail::gossip_arg_of<detail::gossip_arg::mixer, mixer::average, Args...>::type, Transport,
         typename detail::gossip_arg_of<detail::gossip_arg::schedule, schedule::every_step, Args...>::type>;

}  // namespace terse

#include <terse/collective/detail/gossip_failures.inl>
#include <terse/collective/detail/gossip_mixing.inl>
#include <terse/collective/detail/gossip_round.inl>
#include <terse/collective/detail/gossip_state.inl>

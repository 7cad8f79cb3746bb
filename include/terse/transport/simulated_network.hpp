#pragma once
/// @file
/// `terse::simulated_network<Inner>`: runs every verb on the inner transport
/// (the data really moves) and then charges the time an alpha-beta network
/// would take for it, so a study on one machine can report how long its
/// communication would take on a 10 Gb/s cluster.
/// (Over 400 lines: one charging body per verb and overload of the
/// transport concepts it decorates, each short; splitting them by verb would
/// scatter the one pricing rule they share.)
///
/// @code
/// terse::run_local(8, [&](terse::local_transport& t) {
///   terse::simulated_network net(t, terse::network_model::ethernet_10g());
///   net.allreduce(terse::host_span<float>(grad), terse::reduce_op::sum);
///   double seconds = net.modelled_seconds();
/// });
/// @endcode
///
/// With W = size(), N the bytes of the full buffer, alpha the latency and
/// beta = 1 / bandwidth (docs/transports.md, "What the decorators count"):
///
/// | verb | modelled seconds |
/// |---|---|
/// | allreduce | 2(W-1) alpha + 2(W-1)/W N beta |
/// | reduce_scatter (N = input), allgather (N = output) | (W-1) alpha + (W-1)/W N beta |
/// | allgatherv | (W-1) alpha + (total - smallest count) beta |
/// | broadcast | ceil(log2 W) alpha + N beta |
/// | send, recv | alpha + N beta |
/// | sendrecv | the longer of its send and its recv (they overlap) |
/// | barrier | ceil(log2 W) alpha |
/// | exchange | alpha + max(sum of sends bytes/bw(rank, peer), sum of recvs bytes/bw(peer, rank)); 0 if all local |
///
/// With per-link bandwidths the collectives run at the slowest link of the
/// ring r -> r+1 (mod W) and point-to-point verbs at their own link (send:
/// rank -> peer; recv: peer -> rank). A world of one rank costs nothing but
/// its point-to-point latency. Times are rank-independent for collectives,
/// computed in double from the formulas (not from metered's integer bytes).
/// A call is charged when it returns; one that throws costs nothing. An
/// exchange is charged (under verb::send) when start_exchange returns: its
/// messages are posted at once, so they share one latency, and the NIC
/// serialises the bytes each way; messages to this rank itself are free.
///
/// With wall_clock::follows_model the rank's link is busy until the end of
/// its last modelled transfer: an exchange begins at max(now, busy until),
/// is ready cost seconds later and keeps the link busy until then; test()
/// is false until the inner exchange completed and that time has passed,
/// and wait() sleeps until it. A blocking verb also begins no earlier than
/// busy until (it queues behind exchanges in flight).
///
/// `split(colour, key)` and `split_shared()` (when `Inner` has them) return a
/// `simulated_network` over the inner transport's sub-transport, held by
/// value, with the same latency, bandwidth and wall_clock, fresh modelled
/// seconds and a link clock of its own (a sub-transport and its parent do
/// not queue behind each other). With per-link bandwidths, sub rank i is
/// rank m[i] here, and the sub-model's W' x W' matrix is this model's
/// restricted to the members: entry [i * W' + j] = link (m[i] -> m[j]). The
/// members learn m by an allgather of their ranks on the undecorated
/// sub-transport (so a lower decorator neither meters nor charges it);
/// the split itself is not charged.

#include <terse/core/concepts.hpp>
#include <terse/core/error.hpp>
#include <terse/core/span.hpp>
#include <terse/core/verbs.hpp>
#include <terse/transport/detail/decorator_base.hpp>
#include <terse/transport/detail/decorator_cost.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace terse {

/// An alpha-beta network: every message costs `latency_s`, every byte
/// 1 / bandwidth seconds. A printable aggregate:
/// `network_model{.latency_s = 5e-6, .bandwidth_bytes_per_s = 12.5e9}`.
/// The default is a free network (no latency, infinite bandwidth).
struct network_model {
  double latency_s = 0.0;
  double bandwidth_bytes_per_s = std::numeric_limits<double>::infinity();
  /// Empty (every link at bandwidth_bytes_per_s), or W x W row-major, entry
  /// [from * W + to] the bytes per second from rank `from` to rank `to`.
  std::vector<double> link_bandwidth_bytes_per_s{};

  /// `gigabits_per_s` Gb/s (10^9 bits) per link.
  static network_model gbps(double gigabits_per_s, double latency_s = 0.0)
  {
    return network_model{.latency_s = latency_s, .bandwidth_bytes_per_s = gigabits_per_s * 1e9 / 8.0};
  }

  // Presets: round figures of the right order for each fabric, not
  // measurements of any machine.
  static network_model ethernet_10g() { return gbps(10.0, 25e-6); }
  static network_model ethernet_100g() { return gbps(100.0, 10e-6); }
  static network_model infiniband_hdr() { return gbps(200.0, 2e-6); }
  /// NVLink 4 (H100): about 450 GB/s each way.
  static network_model nvlink4() { return network_model{.latency_s = 3e-6, .bandwidth_bytes_per_s = 450e9}; }

  /// `world` ranks in nodes of `ranks_per_node` consecutive ranks: links
  /// inside a node run at `intra_bytes_per_s`, links between nodes at
  /// `inter_bytes_per_s`.
  static network_model two_level(int world, int ranks_per_node, double intra_bytes_per_s, double inter_bytes_per_s,
                                 double latency_s = 0.0)
  {
    TERSE_EXPECTS(world >= 1 && ranks_per_node >= 1, "a world and its nodes have at least one rank");
    network_model model{.latency_s = latency_s, .bandwidth_bytes_per_s = inter_bytes_per_s};
    const auto w = static_cast<std::size_t>(world);
    model.link_bandwidth_bytes_per_s.resize(w * w);
    for (int from = 0; from < world; ++from) {
      for (int to = 0; to < world; ++to) {
        const bool same_node = from / ranks_per_node == to / ranks_per_node;
        model.link_bandwidth_bytes_per_s[static_cast<std::size_t>(from) * w + static_cast<std::size_t>(to)] =
            same_node ? intra_bytes_per_s : inter_bytes_per_s;
      }
    }
    return model;
  }

  /// One NIC per rank, `nic_bytes_per_s[r]` for rank r: a link runs at the
  /// slower of its two ends (a few ranks on slow NICs, stragglers).
  static network_model from_nics(const std::vector<double>& nic_bytes_per_s, double latency_s = 0.0)
  {
    TERSE_EXPECTS(!nic_bytes_per_s.empty(), "a world has at least one rank");
    const std::size_t w = nic_bytes_per_s.size();
    network_model model{.latency_s = latency_s,
                        .bandwidth_bytes_per_s = *std::max_element(nic_bytes_per_s.begin(), nic_bytes_per_s.end())};
    model.link_bandwidth_bytes_per_s.resize(w * w);
    for (std::size_t from = 0; from < w; ++from) {
      for (std::size_t to = 0; to < w; ++to) {
        model.link_bandwidth_bytes_per_s[from * w + to] = std::min(nic_bytes_per_s[from], nic_bytes_per_s[to]);
      }
    }
    return model;
  }

  bool per_link() const noexcept { return !link_bandwidth_bytes_per_s.empty(); }

  /// Bytes per second from `from` to `to` in a world of `world` ranks.
  double link_bandwidth(int from, int to, int world) const noexcept
  {
    if (!per_link() || from < 0 || to < 0 || from >= world || to >= world) {
      return bandwidth_bytes_per_s;
    }
    return link_bandwidth_bytes_per_s[static_cast<std::size_t>(from) * static_cast<std::size_t>(world) +
                                      static_cast<std::size_t>(to)];
  }

  /// Throws errc::invalid_argument unless the model fits a world of `world`.
  void validate(int world) const
  {
    TERSE_EXPECTS(latency_s >= 0.0 && std::isfinite(latency_s), "latency must be finite and non-negative");
    TERSE_EXPECTS(bandwidth_bytes_per_s > 0.0, "bandwidth must be positive (infinity for a free link)");
    if (per_link()) {
      const auto w = static_cast<std::size_t>(world);
      TERSE_EXPECTS(link_bandwidth_bytes_per_s.size() == w * w,
                    "link_bandwidth_bytes_per_s needs W x W = " + std::to_string(w * w) + " entries, has " +
                        std::to_string(link_bandwidth_bytes_per_s.size()));
      for (const double bandwidth : link_bandwidth_bytes_per_s) {
        TERSE_EXPECTS(bandwidth > 0.0, "every link bandwidth must be positive");
      }
    }
  }
};

inline std::ostream& operator<<(std::ostream& out, const network_model& model)
{
  out << "network_model{latency " << model.latency_s << " s, bandwidth " << model.bandwidth_bytes_per_s << " B/s";
  if (model.per_link()) {
    out << ", " << model.link_bandwidth_bytes_per_s.size() << " per-link bandwidths";
  }
  return out << '}';
}

inline std::string to_string(const network_model& model)
{
  std::ostringstream text;
  text << model;
  return text.str();
}

/// Whether the wall clock follows the model too.
enum class wall_clock : bool {
  untouched,      ///< only modelled_seconds() advances
  follows_model,  ///< each call also sleeps until its modelled time has passed since it began
};

/// Runs each verb on `Inner`, then adds its modelled alpha-beta time (file
/// comment) to modelled_seconds(). Has exactly the verbs `Inner` has.
/// @tparam Inner a terse transport with `rank()` and `size()` and any of the
///         verbs; a value type is held by value (move it in), an lvalue
///         reference type by reference. `terse::simulated_network net(t,
///         model)` deduces the reference from an lvalue `t`.
template <class Inner>
class simulated_network : public detail::decorator_base<simulated_network<Inner>, Inner> {
  using base = detail::decorator_base<simulated_network<Inner>, Inner>;
  friend base;

 public:
  /// Throws errc::invalid_argument if `model` does not fit size().
  explicit simulated_network(Inner inner, network_model model = {}, wall_clock clock = wall_clock::untouched)
      : base(std::forward<Inner>(inner)), model_(std::move(model)), clock_(clock)
  {
    const int world = this->size();
    model_.validate(world);
    double slowest = model_.bandwidth_bytes_per_s;
    if (model_.per_link() && world > 1) {
      slowest = std::numeric_limits<double>::infinity();
      for (int r = 0; r < world; ++r) {
        slowest = std::min(slowest, model_.link_bandwidth(r, (r + 1) % world, world));
      }
    }
    ring_seconds_per_byte_ = 1.0 / slowest;
  }

  const network_model& model() const noexcept { return model_; }

  /// Modelled seconds of every call since construction or reset(). A
  /// sendrecv and an exchange are booked under verb::send.
  double modelled_seconds() const noexcept { return total_; }
  double modelled_seconds(verb v) const noexcept { return per_verb_[static_cast<std::size_t>(v)]; }

  void reset() noexcept
  {
    total_ = 0.0;
    per_verb_ = {};
  }

 private:
  using steady = std::chrono::steady_clock;

  /// An exchange in flight under follows_model.
  struct pending_exchange {
    exchange_id id;
    steady::time_point ready;
    bool inner_done = false;
  };

  static steady::duration duration_of(double seconds)
  {
    return std::chrono::ceil<steady::duration>(std::chrono::duration<double>(seconds));
  }

  template <class Forward>
  void intercept(const detail::verb_call& call, Forward& forward)
  {
    const auto start = std::max(steady::now(), busy_until_);
    forward();
    const double seconds = detail::modelled_seconds(call, this->size(), costs_of(call));
    charge(call.what, seconds);
    if (clock_ == wall_clock::follows_model) {
      busy_until_ = start + duration_of(seconds);
      std::this_thread::sleep_until(busy_until_);
    }
  }

  template <class Forward>
  exchange_id intercept_exchange(const detail::verb_call& call, Forward& forward)
  {
    const auto now = steady::now();
    const exchange_id id = forward();
    const int world = this->size();
    const double seconds = detail::exchange_seconds(
        call, this->rank(), model_.latency_s, [&](int from, int to) { return model_.link_bandwidth(from, to, world); });
    charge(verb::send, seconds);
    if (clock_ == wall_clock::follows_model) {
      busy_until_ = std::max(now, busy_until_) + duration_of(seconds);
      pending_.push_back(pending_exchange{id, busy_until_, false});
    }
    return id;
  }

  template <class Forward>
  bool intercept_test(exchange_id id, Forward& forward)
  {
    pending_exchange* entry = find(id);
    if (entry == nullptr) {
      return forward();  // untouched clock (or an unknown id, which the inner reports)
    }
    if (!entry->inner_done) {
      try {
        entry->inner_done = forward();
      } catch (...) {
        forget(*entry);
        throw;
      }
    }
    if (!entry->inner_done || steady::now() < entry->ready) {
      return false;
    }
    forget(*entry);
    return true;
  }

  template <class Forward>
  void intercept_wait(exchange_id id, Forward& forward)
  {
    pending_exchange* entry = find(id);
    if (entry == nullptr) {
      forward();
      return;
    }
    const steady::time_point ready = entry->ready;
    const bool inner_done = entry->inner_done;
    forget(*entry);
    if (!inner_done) {
      forward();
    }
    std::this_thread::sleep_until(ready);
  }

  void charge(verb booked, double seconds) noexcept
  {
    total_ += seconds;
    per_verb_[static_cast<std::size_t>(booked)] += seconds;
  }

  pending_exchange* find(exchange_id id) noexcept
  {
    for (pending_exchange& entry : pending_) {
      if (entry.id == id) {
        return &entry;
      }
    }
    return nullptr;
  }

  // Swap with the last and pop: the vector keeps its capacity.
  void forget(pending_exchange& entry) noexcept
  {
    entry = pending_.back();
    pending_.pop_back();
  }

  template <class Forward>
  auto intercept_split(Forward& forward)
  {
    using sub_type = decltype(forward());
    using undecorated_sub = std::remove_cvref_t<decltype(detail::undecorated(std::declval<sub_type&>()))>;
    constexpr bool gathers_on_host =
        concepts::transport_accepts_memory<undecorated_sub, memory_space::host> &&
        requires(undecorated_sub & t, host_span<const std::int32_t> in, host_span<std::int32_t> out)
    {
      t.allgather(in, out);
    };
    // Checked before the split, so every rank refuses alike.
    TERSE_CHECK(gathers_on_host || !model_.per_link(), errc::unsupported,
                "simulated_network::split with per-link bandwidths learns who the members are by an allgather of "
                "int32 on host memory, which this transport does not have; use a uniform model");
    sub_type sub = forward();
    network_model model = model_;
    if constexpr (gathers_on_host) {
      if (model_.per_link()) {
        model.link_bandwidth_bytes_per_s = restricted_links(detail::undecorated(sub));
      }
    }
    return simulated_network<sub_type>(std::move(sub), std::move(model), clock_);
  }

  // This model's links among the members of `sub`, in sub rank order: each
  // member names its rank here.
  template <class Sub>
  std::vector<double> restricted_links(Sub& sub) const
  {
    const int world = this->size();
    const auto width = static_cast<std::size_t>(sub.size());
    std::vector<std::int32_t> members(width, 0);
    const std::int32_t mine = this->rank();
    sub.allgather(host_span<const std::int32_t>(&mine, 1), host_span<std::int32_t>(members));
    std::vector<double> links(width * width);
    for (std::size_t i = 0; i < width; ++i) {
      for (std::size_t j = 0; j < width; ++j) {
        links[i * width + j] = model_.link_bandwidth(members[i], members[j], world);
      }
    }
    return links;
  }

  detail::link_costs costs_of(const detail::verb_call& call) const noexcept
  {
    const int me = this->rank();
    const int world = this->size();
    const int from = call.exchange ? call.source : call.peer;
    return detail::link_costs{.alpha = model_.latency_s,
                              .ring_beta = ring_seconds_per_byte_,
                              .send_beta = 1.0 / model_.link_bandwidth(me, call.peer, world),
                              .recv_beta = 1.0 / model_.link_bandwidth(from, me, world)};
  }

  network_model model_;
  wall_clock clock_;
  double ring_seconds_per_byte_ = 0.0;
  double total_ = 0.0;
  std::array<double, verb_count> per_verb_{};
  steady::time_point busy_until_{};        ///< follows_model: the link is busy until then
  std::vector<pending_exchange> pending_;  ///< follows_model: exchanges not yet reported complete
};

// Deduce a reference from an lvalue, a value from an rvalue. (No trailing
// pack: the constructor's own guide would be preferred over one.)
template <class T>
simulated_network(T&&) -> simulated_network<T>;
template <class T>
simulated_network(T&&, network_model) -> simulated_network<T>;
template <class T>
simulated_network(T&&, network_model, wall_clock) -> simulated_network<T>;

}  // namespace terse

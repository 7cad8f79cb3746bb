#pragma once
/// @file
/// `terse::cost::cluster`: what the cost model (terse/cost/model.hpp) needs
/// to know about a network. A cluster is a list of levels, innermost first
/// (a flat cluster is one level): at level k, `ranks_per_link` consecutive
/// ranks share one link of `bandwidth_bytes_per_s` each way, and a message
/// between two ranks on different links of that level pays `latency_s` more.
///
/// @code
/// // 8 GPUs per node on NVLink, one 200 Gb/s NIC per node:
/// terse::cost::cluster c{.levels = {{.ranks_per_link = 1, .latency_s = 3e-6, .bandwidth_bytes_per_s = 450e9},
///                                   {.ranks_per_link = 8, .latency_s = 10e-6, .bandwidth_bytes_per_s = 25e9}}};
/// auto flat = terse::cost::cluster::flat(/*gigabits_per_s=*/25.0, /*latency_s=*/20e-6);
/// auto simulated = terse::cost::cluster::cluster_10g();  // platforms/cluster_10g.xml as SMPI runs it
/// @endcode
///
/// Three optional corrections make a flat level behave as SimGrid's SMPI
/// network model does (docs/simulation.md, "Will compression pay on my
/// cluster? The cost model"); plain alpha-beta leaves them at their defaults:
/// - `size_factors`: latency and bandwidth multipliers by message size
///   (SMPI's `smpi/lat-factor`, `smpi/bw-factor`);
/// - `wire_bytes_per_byte`: link capacity each payload byte uses (1.05 in
///   SMPI, whose cross-traffic puts 5 % of every flow on the reverse path);
/// - `polling`: the CPU time a rank spends testing its requests before it
///   learns that an exchange has finished (`smpi/test`, terse's backoff).

#include <terse/core/error.hpp>
#include <terse/transport/simulated_network.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

namespace terse::cost {

/// One level of a network.
struct level {
  /// Consecutive ranks sharing one link of this level: 1 for a NIC per rank,
  /// 8 for a node's NIC shared by its 8 GPUs. Each level's count is a
  /// multiple of the one inside it.
  int ranks_per_link = 1;
  /// Latency (alpha) a message adds when it leaves its link group at this
  /// level: a message between ranks on different links of levels 0..k pays
  /// the sum of their latencies. On a flat SimGrid cluster this is twice
  /// the XML's `lat` (the sender's link and the receiver's).
  double latency_s = 0.0;
  /// Bytes per second of one link, each way (full duplex).
  double bandwidth_bytes_per_s = std::numeric_limits<double>::infinity();
};

/// Multipliers for messages of at least `from_bytes` bytes (up to the next
/// entry's): the latency is multiplied by `latency`, the bandwidth by
/// `bandwidth`. SimGrid's piecewise `smpi/lat-factor` and `smpi/bw-factor`.
struct size_factor {
  std::uint64_t from_bytes = 0;
  double latency = 1.0;
  double bandwidth = 1.0;
};

/// How a rank learns that an exchange finished: it tests each pending
/// request in turn (terse's MPI transport never blocks in MPI), and each
/// test costs `test_s`. After `polls_before_sleep` sweeps of one wait it
/// sleeps `sleep_s` between sweeps. All zero: noticing is free.
struct polling {
  double test_s = 0.0;
  unsigned polls_before_sleep = 0;
  double sleep_s = 0.0;
  /// Sends below this many bytes complete as soon as they are posted (eager
  /// sends; SMPI's `smpi/send-is-detached-thresh`), so they are tested once.
  std::uint64_t eager_below_bytes = 0;
};

/// A network as the cost model sees it (file comment).
struct cluster {
  std::vector<level> levels{level{}};
  /// Sorted by from_bytes, the first at 0; empty: every factor is 1.
  std::vector<size_factor> size_factors{};
  double wire_bytes_per_byte = 1.0;
  polling poll{};

  /// A flat cluster: one NIC per rank at `gigabits_per_s` (10^9 bits), each
  /// message `latency_s` (alpha), plain alpha-beta.
  static cluster flat(double gigabits_per_s, double latency_s)
  {
    return cluster{
        .levels = {
            level{.ranks_per_link = 1, .latency_s = latency_s, .bandwidth_bytes_per_s = gigabits_per_s * 1e9 / 8.0}}};
  }

  /// The alpha-beta network of the `simulated_network` decorator: one level,
  /// its latency and bandwidth (a model with per-link bandwidths is refused:
  /// describe its levels instead).
  static cluster from(const network_model& model)
  {
    TERSE_EXPECTS(!model.per_link(),
                  "cost::cluster::from: a network_model with per-link bandwidths has no single level; describe its "
                  "levels (cost::level) instead");
    return cluster{
        .levels = {level{
            .ranks_per_link = 1, .latency_s = model.latency_s, .bandwidth_bytes_per_s = model.bandwidth_bytes_per_s}}};
  }

  /// What SimGrid 3.32's SMPI makes of a flat `<cluster>` (a private link
  /// per host into a non-blocking switch, SPLITDUPLEX) with `bw` =
  /// `gigabits_per_s` and `lat` = `link_latency_s`, run as docs/simulation.md
  /// recommends (`smpi/test:1e-6`, `grow-injected-times:no`): SMPI's default
  /// size factors, its 5 % cross-traffic, and terse's polling under SMPI
  /// (1 us per MPI_Test, a 16 us sleep after 256 polls, eager sends below
  /// 64 KiB).
  static cluster smpi_flat(double gigabits_per_s, double link_latency_s)
  {
    cluster c = flat(gigabits_per_s, 2.0 * link_latency_s);
    c.size_factors = smpi_size_factors();
    c.wire_bytes_per_byte = 1.05;
    c.poll = polling{.test_s = 1e-6, .polls_before_sleep = 256, .sleep_s = 16e-6, .eager_below_bytes = 65536};
    return c;
  }

  /// platforms/cluster_10g.xml under SMPI: 10 Gb/s, 25 us links.
  static cluster cluster_10g() { return smpi_flat(10.0, 25e-6); }
  /// platforms/cluster_100g.xml under SMPI: 100 Gb/s, 2 us links.
  static cluster cluster_100g() { return smpi_flat(100.0, 2e-6); }

  /// SimGrid 3.32's defaults for `smpi/lat-factor` and `smpi/bw-factor`
  /// (network model SMPI), fitted by SimGrid to MPI ping-pongs on a real
  /// Ethernet cluster.
  static std::vector<size_factor> smpi_size_factors()
  {
    return {{0, 2.01467, 0.812084},    {257, 1.95341, 0.338112},   {732, 1.9503, 0.341987},
            {1426, 1.61075, 0.608902}, {3484, 1.88101, 0.77493},   {5776, 2.18796, 1.08739},
            {9376, 2.59299, 0.58729},  {15424, 3.48845, 0.697866}, {65472, 11.6436, 0.940694}};
  }

  /// The factors for a message of `bytes` bytes.
  size_factor factor(std::uint64_t bytes) const noexcept
  {
    size_factor found{};
    for (const size_factor& f : size_factors) {
      if (f.from_bytes > bytes) {
        break;
      }
      found = f;
    }
    return found;
  }

  /// Throws errc::invalid_argument unless this describes a network.
  void validate() const
  {
    TERSE_EXPECTS(!levels.empty(), "cost::cluster needs at least one level (a flat cluster has one)");
    int inner = 1;
    for (const level& l : levels) {
      TERSE_EXPECTS(l.ranks_per_link >= 1 && l.ranks_per_link % inner == 0,
                    "cost::cluster: each level's ranks_per_link must be a positive multiple of the level inside it");
      TERSE_EXPECTS(std::isfinite(l.latency_s) && l.latency_s >= 0.0, "cost::cluster: latency must be finite, >= 0");
      TERSE_EXPECTS(l.bandwidth_bytes_per_s > 0.0, "cost::cluster: bandwidth must be positive (infinity: free)");
      inner = l.ranks_per_link;
    }
    std::uint64_t previous = 0;
    for (std::size_t i = 0; i < size_factors.size(); ++i) {
      const size_factor& f = size_factors[i];
      TERSE_EXPECTS(i > 0 || f.from_bytes == 0, "cost::cluster: the first size factor must start at 0 bytes");
      TERSE_EXPECTS(i == 0 || f.from_bytes > previous, "cost::cluster: size factors must be sorted by from_bytes");
      TERSE_EXPECTS(f.latency > 0.0 && f.bandwidth > 0.0, "cost::cluster: size factors must be positive");
      previous = f.from_bytes;
    }
    TERSE_EXPECTS(wire_bytes_per_byte > 0.0, "cost::cluster: wire_bytes_per_byte must be positive");
    TERSE_EXPECTS(poll.test_s >= 0.0 && poll.sleep_s >= 0.0, "cost::cluster: polling times must be >= 0");
  }
};

inline std::ostream& operator<<(std::ostream& out, const cluster& c)
{
  out << "cluster{";
  for (std::size_t k = 0; k < c.levels.size(); ++k) {
    const level& l = c.levels[k];
    out << (k == 0 ? "" : ", ") << "level " << k << ": " << l.ranks_per_link << " rank(s)/link, " << l.latency_s
        << " s, " << l.bandwidth_bytes_per_s << " B/s";
  }
  if (!c.size_factors.empty()) {
    out << ", " << c.size_factors.size() << " size factors";
  }
  if (c.wire_bytes_per_byte != 1.0) {
    out << ", " << c.wire_bytes_per_byte << " wire bytes/byte";
  }
  if (c.poll.test_s > 0.0) {
    out << ", " << c.poll.test_s << " s per test";
  }
  return out << '}';
}

}  // namespace terse::cost

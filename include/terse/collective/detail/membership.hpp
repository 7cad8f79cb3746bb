#pragma once
/// @file
/// Membership agreement after failures: the survivors agree on the set of
/// dead ranks over point-to-point exchanges only (a world collective cannot
/// run once a rank is dead). FloodSet (Lynch: "Distributed Algorithms",
/// 1996, section 6.2) with early stopping and a confirming round:
///
/// - every round, each rank sends its set of dead ranks to every rank it
///   believes alive and receives theirs, within the transport's deadline; a
///   peer whose message fails (dead, or silent past the deadline) is added;
///   received sets are merged in;
/// - a round in which nothing was added and every received set equalled the
///   rank's own is stable; the next round confirms: every rank believed
///   alive must send a confirmation of a set with the same hash, else this
///   rank raises errc::peer_failed.
///
/// Two ranks that both return hold the same set: each took a confirmation of
/// its own set, for the same round, from the other. A rank that raises
/// stops taking part (it must leave: it is treated as failed at the next
/// agreement), so ranks that go on never hold different views. With f ranks
/// failing before or during the agreement it takes at most f + 2 rounds of
/// one exchange each (W − 1 small messages per rank per round), each bounded
/// by the transport's timeout.

#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace terse::detail {

inline constexpr int membership_tag = 1001;

/// A transport whose grouped exchanges report failed peers instead of
/// raising (failure_scope::peer on the local transport).
template <class Transport>
concept reports_peer_failures = requires(Transport& t, exchange_id id, exchange_report& report)
{
  t.wait(id, report);
  t.test(id, report);
};

struct membership_result {
  std::vector<char> dead;  ///< dead[r] != 0: rank r failed (the same on every rank that returns)
  int rounds = 0;          ///< exchanges it took, the confirming one included
};

/// Runs nothing between rounds; tests pass a hook that kills a rank mid-agreement.
struct no_membership_hook {
  void operator()(int /*round*/) const noexcept {}
};

inline std::uint64_t membership_hash(const std::vector<char>& dead) noexcept
{
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (char d : dead) {
    h = (h ^ static_cast<std::uint64_t>(d != 0 ? 1 : 0)) * 0x100000001b3ull;
  }
  return h;
}

/// Every surviving rank calls it with the same `instance` (how many
/// agreements ran before) and the dead ranks it knows of.
template <class Transport, class Hook = no_membership_hook>
membership_result agree_on_membership(Transport& t, std::vector<char> dead, std::uint64_t instance,
                                      Hook&& before_round = {})
{
  static_assert(reports_peer_failures<Transport>,
                "membership agreement needs a transport that reports failed peers (failure_scope::peer)");
  const int world = t.size();
  const int me = t.rank();
  TERSE_EXPECTS(dead.size() == static_cast<std::size_t>(world), "one entry per rank");
  TERSE_EXPECTS(dead[static_cast<std::size_t>(me)] == 0, "a rank taking part in the agreement is alive");
  constexpr std::size_t header = 4 * sizeof(std::uint64_t);  // instance, round, confirming, hash
  const std::size_t bytes = header + static_cast<std::size_t>(world);
  std::vector<std::byte> mine(bytes), theirs;
  std::vector<int> peers;
  std::vector<outgoing<>> sends;
  std::vector<incoming<>> recvs;
  exchange_report report;
  bool stable = false;
  for (int round = 0;; ++round) {
    TERSE_CHECK(round <= world + 1, errc::peer_failed,
                "membership agreement did not settle within " + std::to_string(world + 1) + " rounds");
    before_round(round);
    const bool confirming = stable;
    peers.clear();
    for (int r = 0; r < world; ++r) {
      if (r != me && dead[static_cast<std::size_t>(r)] == 0) {
        peers.push_back(r);
      }
    }
    if (peers.empty()) {
      return {std::move(dead), round};
    }
    const std::uint64_t hash = membership_hash(dead);
    const std::uint64_t head[4] = {instance, static_cast<std::uint64_t>(round), confirming ? 1u : 0u, hash};
    std::memcpy(mine.data(), head, header);
    for (std::size_t r = 0; r < dead.size(); ++r) {
      mine[header + r] = std::byte{static_cast<unsigned char>(dead[r] != 0 ? 1 : 0)};
    }
    theirs.assign(peers.size() * bytes, std::byte{0});
    sends.clear();
    recvs.clear();
    for (std::size_t k = 0; k < peers.size(); ++k) {
      sends.push_back(outgoing<>{peers[k], host_span<const std::byte>(mine.data(), bytes)});
      recvs.push_back(incoming<>{peers[k], host_span<std::byte>(theirs.data() + k * bytes, bytes)});
    }
    const exchange_id id = t.start_exchange(host_span<const outgoing<>>(sends.data(), sends.size()),
                                            host_span<const incoming<>>(recvs.data(), recvs.size()), membership_tag);
    t.wait(id, report);

    std::vector<char> failed(peers.size(), 0);
    for (std::size_t k : report.failed_sends) {
      failed[k] = 1;
    }
    for (std::size_t k : report.failed_recvs) {
      failed[k] = 1;
    }
    bool same = true;  // nothing added, every set received equal to ours
    const std::vector<char> before = dead;
    for (std::size_t k = 0; k < peers.size(); ++k) {
      const std::string who = "rank " + std::to_string(peers[k]);
      if (failed[k] != 0) {
        dead[static_cast<std::size_t>(peers[k])] = 1;
        same = false;
        continue;
      }
      const std::byte* message = theirs.data() + k * bytes;
      std::uint64_t got[4];
      std::memcpy(got, message, header);
      TERSE_CHECK(got[0] == instance && got[1] == static_cast<std::uint64_t>(round), errc::peer_failed,
                  who + " is at another membership round (instance " + std::to_string(got[0]) + ", round " +
                      std::to_string(got[1]) + "; expected " + std::to_string(instance) + ", " + std::to_string(round) +
                      ")");
      TERSE_CHECK(message[header + static_cast<std::size_t>(me)] == std::byte{0}, errc::peer_failed,
                  who + " counts this rank (" + std::to_string(me) + ") as failed: it must leave");
      if (confirming) {
        TERSE_CHECK(got[2] == 1 && got[3] == hash, errc::peer_failed,
                    who + " did not confirm the same membership; the agreement failed");
        continue;
      }
      for (std::size_t r = 0; r < dead.size(); ++r) {
        const char theirs_r = message[header + r] != std::byte{0} ? 1 : 0;
        if (theirs_r != before[r]) {
          same = false;
        }
        dead[r] = static_cast<char>(dead[r] | theirs_r);
      }
    }
    if (confirming) {
      TERSE_CHECK(same, errc::peer_failed,
                  "a rank failed while the survivors confirmed their membership; the agreement failed");
      return {std::move(dead), round + 1};
    }
    stable = same && dead == before;
  }
}

}  // namespace terse::detail

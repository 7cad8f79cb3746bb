// Time-varying topologies: finite-time exact averaging where it is claimed
// (and not where it is not), matchings, plan hashes and allocation-free
// round_for.
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "topology_checks.hpp"

namespace {

namespace tp = terse::topology;

/// Runs rounds [t0, t0 + rounds) on x as each rank would, from its rank_round.
template <class T>
std::vector<T> gossip(const tp::graph& g, std::vector<T> x, std::uint64_t t0, std::uint64_t rounds)
{
  tp::rank_round mine;
  std::vector<T> next(x.size());
  for (std::uint64_t t = t0; t < t0 + rounds; ++t) {
    for (int r = 0; r < g.world(); ++r) {
      g.round_for(r, t, mine);
      T sum = static_cast<T>(mine.self_weight) * x[static_cast<std::size_t>(r)];
      for (const tp::link& l : mine.recvs) {
        sum += static_cast<T>(l.weight) * x[static_cast<std::size_t>(l.peer)];
      }
      next[static_cast<std::size_t>(r)] = sum;
    }
    x.swap(next);
  }
  return x;
}

/// max_i |x_i - mean(x0)| / |mean(x0)|, the mean taken in long double.
template <class T>
double relative_error(const std::vector<T>& x0, const std::vector<T>& x)
{
  long double mean = 0.0L;
  for (T v : x0) {
    mean += static_cast<long double>(v);
  }
  mean /= static_cast<long double>(x0.size());
  double worst = 0.0;
  for (T v : x) {
    worst = std::max(worst, static_cast<double>(std::abs((static_cast<long double>(v) - mean) / mean)));
  }
  return worst;
}

template <class T>
std::vector<T> random_vector(int world, topology_checks::uniform_source& random)
{
  std::vector<T> x(static_cast<std::size_t>(world));
  for (T& v : x) {
    v = static_cast<T>(1.0 + random());  // in [1, 2): the mean is well away from 0
  }
  return x;
}

}  // namespace

TEST_CASE("one-peer exponential averages exactly in log2 W rounds from every offset when W is a power of two")
{
  topology_checks::uniform_source random(11);
  for (int w = 2; w <= 64; w *= 2) {
    const tp::graph g = tp::one_peer_exponential(w);
    const auto tau = static_cast<std::uint64_t>(std::countr_zero(static_cast<unsigned>(w)));
    CHECK(g.period() == tau);
    CHECK(g.max_degree() == 1);
    CHECK(g.rho() == 0.0);
    for (std::uint64_t t0 = 0; t0 < tau; ++t0) {
      CAPTURE(w);
      CAPTURE(t0);
      const auto x64 = random_vector<double>(w, random);
      CHECK(relative_error(x64, gossip(g, x64, t0, tau)) <= 1e-15);
      const auto x32 = random_vector<float>(w, random);
      CHECK(relative_error(x32, gossip(g, x32, t0, tau)) <= 1e-6);
    }
  }
}

TEST_CASE("one-peer exponential is not exact when W is not a power of two")
{
  const tp::graph g = tp::one_peer_exponential(6);
  CHECK(g.period() == 3);
  std::vector<double> unit(6, 0.0);
  unit[0] = 1.0;
  const std::vector<double> x = gossip(g, unit, 0, 3);
  double worst = 0.0;
  for (double v : x) {
    worst = std::max(worst, std::abs(v - 1.0 / 6.0));
  }
  CHECK(worst == doctest::Approx(1.0 / 12.0).epsilon(1e-12));  // 0.0833...
  CHECK(g.rho() > 0.1);
  // round 1 of W = 6: r receives from r + 2, sends to r - 2
  tp::rank_round mine;
  g.round_for(0, 1, mine);
  CHECK(mine.recvs.size() == 1);
  CHECK(mine.recvs[0].peer == 2);
  CHECK(mine.sends[0].peer == 4);
  CHECK(mine.self_weight == 0.5);
}

TEST_CASE("one-peer exact (Base-2 graph) averages exactly after period() rounds for every W")
{
  const std::map<int, std::size_t> paper{{3, 3}, {5, 5}, {6, 4}, {12, 5}, {2, 1}, {4, 2}, {8, 3}, {16, 4}, {32, 5}};
  for (const auto& entry : paper) {
    CAPTURE(entry.first);
    CHECK(tp::one_peer_exact(entry.first).period() == entry.second);
  }
  CHECK(tp::one_peer_exact(64).period() == 6);
  topology_checks::uniform_source random(5);
  for (int w = 1; w <= 64; ++w) {
    CAPTURE(w);
    const tp::graph g = tp::one_peer_exact(w);
    CHECK(g.max_degree() == (w == 1 ? 0u : 1u));
    CHECK(g.time_varying() == (g.period() > 1));
    CHECK(g.rho() == 0.0);
    for (std::uint64_t t0 : {std::uint64_t{0}, static_cast<std::uint64_t>(g.period())}) {
      const auto x = random_vector<double>(w, random);
      CHECK(relative_error(x, gossip(g, x, t0, g.period())) <= 1e-14);
    }
    // every round is a matching: at most one peer, the same one both ways
    tp::rank_round mine;
    for (std::uint64_t t = 0; t < g.period(); ++t) {
      for (int r = 0; r < w; ++r) {
        g.round_for(r, t, mine);
        REQUIRE(mine.sends.size() <= 1);
        REQUIRE(mine.sends.size() == mine.recvs.size());
        if (!mine.sends.empty()) {
          CHECK(mine.sends[0].peer == mine.recvs[0].peer);
          CHECK(mine.sends[0].weight > 0.0);
          CHECK(mine.self_weight == doctest::Approx(1.0 - mine.sends[0].weight).epsilon(1e-15));
        } else {
          CHECK(mine.self_weight == 1.0);
        }
      }
    }
  }
}

TEST_CASE("random matchings: maximal, uniform, reproducible from (seed, epoch, t)")
{
  for (int w : {2, 3, 7, 10}) {
    const tp::graph g = tp::random_matchings(w, 42);
    for (std::uint64_t t = 0; t < 20; ++t) {
      const tp::mixing_round round = g.round(t);
      REQUIRE(round.permutations.size() == 1);
      int idle = 0;
      for (int r = 0; r < w; ++r) {
        const int peer = round.permutations[0].send_to[static_cast<std::size_t>(r)];
        if (peer < 0) {
          ++idle;
          CHECK(round.self_weight[static_cast<std::size_t>(r)] == 1.0);
        } else {
          CHECK(round.permutations[0].send_to[static_cast<std::size_t>(peer)] == r);
          CHECK(round.permutations[0].weight[static_cast<std::size_t>(r)] == 0.5);
        }
      }
      CHECK(idle == w % 2);
    }
  }
  CHECK(tp::random_matchings(8, 42).period() == 0);
  CHECK(tp::random_matchings(8, 42).time_varying());
  // W = 4 has three perfect matchings; each should come up a third of the time.
  const tp::graph four = tp::random_matchings(4, 9);
  std::map<int, int> seen;
  for (std::uint64_t t = 0; t < 3000; ++t) {
    ++seen[four.round(t).permutations[0].send_to[0]];
  }
  REQUIRE(seen.size() == 3);
  for (const auto& entry : seen) {
    CAPTURE(entry.first);
    CHECK(entry.second > 900);
    CHECK(entry.second < 1100);
  }
  const tp::graph g = tp::random_matchings(16, 1);
  CHECK(g.round(5).dense() == tp::random_matchings(16, 1).round(5).dense());
  CHECK(g.round(5).dense() != g.round(6).dense());
  CHECK(g.round(5).dense() != tp::random_matchings(16, 2).round(5).dense());
  CHECK(g.round(5).dense() != g.with_epoch(1).round(5).dense());
  CHECK(g.rho() > 0.0);
  CHECK(g.rho() < 1.0);
  CHECK(g.rho() != g.with_epoch(1).rho());  // the estimate is per epoch
}

TEST_CASE("plan_hash: equal for the same round, different for another round, W, epoch or seed")
{
  const tp::graph g = tp::one_peer_exponential(16);
  CHECK(g.plan_hash(1) == g.plan_hash(5));
  CHECK(g.plan_hash(1) == tp::one_peer_exponential(16).plan_hash(1));
  std::set<std::uint64_t> within;
  for (std::uint64_t t = 0; t < g.period(); ++t) {
    within.insert(g.plan_hash(t));
  }
  CHECK(within.size() == g.period());
  CHECK(g.plan_hash(1) != tp::one_peer_exponential(32).plan_hash(1));
  CHECK(g.plan_hash(1) != g.with_epoch(1).plan_hash(1));
  CHECK(g.with_epoch(1).plan_hash(1) == g.with_epoch(1).plan_hash(5));
  CHECK(tp::ring(8).plan_hash(0) == tp::ring(8).plan_hash(3));
  CHECK(tp::ring(8).plan_hash(0) != tp::ring(9).plan_hash(0));
  CHECK(tp::ring(8).plan_hash(0) != tp::exponential(8).plan_hash(0));
  const tp::graph exact = tp::one_peer_exact(12);
  CHECK(exact.plan_hash(0) == exact.plan_hash(exact.period()));
  CHECK(exact.plan_hash(0) != exact.plan_hash(1));
  const tp::graph random = tp::random_matchings(8, 3);
  std::set<std::uint64_t> draws;
  for (std::uint64_t t = 0; t < 32; ++t) {
    draws.insert(random.plan_hash(t));
  }
  CHECK(draws.size() == 32);
  CHECK(random.plan_hash(4) == tp::random_matchings(8, 3).plan_hash(4));
  CHECK(random.plan_hash(4) != tp::random_matchings(8, 4).plan_hash(4));
  CHECK(random.plan_hash(4) != random.with_epoch(2).plan_hash(4));
}

TEST_CASE("round_for allocates nothing once warm")
{
  for (const tp::graph& g : {tp::star(9), tp::one_peer_exponential(12), tp::one_peer_exact(12),
                             tp::random_matchings(12, 4), tp::torus(4, 4)}) {
    CAPTURE(g.name());
    tp::rank_round mine;
    for (std::uint64_t t = 0; t < 10; ++t) {  // warm up on the rank and round with the most links
      for (int r = 0; r < g.world(); ++r) {
        g.round_for(r, t, mine);
      }
    }
    const auto* sends = mine.sends.data();
    const auto* recvs = mine.recvs.data();
    const std::size_t send_capacity = mine.sends.capacity();
    const std::size_t recv_capacity = mine.recvs.capacity();
    for (std::uint64_t t = 0; t < 10; ++t) {
      for (int r = 0; r < g.world(); ++r) {
        g.round_for(r, t, mine);
        CHECK(mine.sends.data() == sends);
        CHECK(mine.recvs.data() == recvs);
        CHECK(mine.sends.capacity() == send_capacity);
        CHECK(mine.recvs.capacity() == recv_capacity);
      }
    }
  }
  // round(t, out) reuses out's buffers too
  const tp::graph g = tp::one_peer_exponential(8);
  tp::mixing_round round;
  g.round(0, round);
  const double* self = round.self_weight.data();
  const int* targets = round.permutations[0].send_to.data();
  g.round(1, round);
  CHECK(round.self_weight.data() == self);
  CHECK(round.permutations[0].send_to.data() == targets);
}

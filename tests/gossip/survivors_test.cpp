// topology::survivors: the graph over the survivors of a failure, with and
// without backup edges.
#include <terse/topology.hpp>
#include <terse/topology/survivors.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <vector>

namespace {
void check_doubly_stochastic(const terse::topology::graph& g)
{
  const auto m = g.round(0).dense();
  for (std::size_t i = 0; i < m.size(); ++i) {
    double row = 0.0, column = 0.0;
    for (std::size_t j = 0; j < m.size(); ++j) {
      row += m[i][j];
      column += m[j][i];
      CHECK(m[i][j] == doctest::Approx(m[j][i]).epsilon(1e-15));  // symmetric
    }
    CHECK(std::abs(row - 1.0) < 1e-12);
    CHECK(std::abs(column - 1.0) < 1e-12);
  }
}
}  // namespace

TEST_CASE("a ring of 12 without ranks 0 and 6 is partitioned, and connected again with backup edges")
{
  const auto ring = terse::topology::ring(12);
  const std::vector<int> dead{0, 6};
  const auto without = terse::topology::survivors(ring, dead, false);
  CHECK(without.partitioned);
  CHECK_FALSE(without.mixing.has_value());
  CHECK(without.ranks == std::vector<int>{1, 2, 3, 4, 5, 7, 8, 9, 10, 11});

  const auto with = terse::topology::survivors(ring, dead, true);
  REQUIRE_FALSE(with.partitioned);
  CHECK(with.backup_edges);
  REQUIRE(with.mixing.has_value());
  const auto& g = *with.mixing;
  CHECK(g.world() == 10);
  CHECK(g.epoch() == ring.epoch() + 1);
  CHECK(g.plan_hash(0) != ring.plan_hash(0));
  check_doubly_stochastic(g);
  CHECK(g.rho() < 1.0 - 1e-3);  // connected: it mixes
  // The backup edges are the second-nearest neighbours around each dead rank:
  // 11 - 1 (compact 9 - 0) and 5 - 7 (compact 4 - 5).
  const auto m = g.round(0).dense();
  CHECK(m[9][0] > 0.0);
  CHECK(m[4][5] > 0.0);
  CHECK(m[0][2] == 0.0);  // no other new edge
}

TEST_CASE("a tree reroutes a dead rank's children to their grandparent, with Metropolis-Hastings weights")
{
  const auto tree = terse::topology::binary_tree(7);  // 0 - {1, 2}, 1 - {3, 4}, 2 - {5, 6}
  const std::vector<int> dead{1};
  CHECK(terse::topology::survivors(tree, dead, false).partitioned);
  const auto with = terse::topology::survivors(tree, dead, true);
  REQUIRE(with.mixing.has_value());
  check_doubly_stochastic(*with.mixing);
  const auto m = with.mixing->round(0).dense();
  // compact: 0->0, 2->1, 3->2, 4->3, 5->4, 6->5; rank 0 now has degree 3 (2, 3, 4).
  CHECK(m[2][0] == doctest::Approx(1.0 / 4.0));
  CHECK(m[3][0] == doctest::Approx(1.0 / 4.0));
  CHECK(m[2][3] == 0.0);  // siblings are not linked to each other
}

TEST_CASE("a failure that leaves the survivors connected needs no backup edges")
{
  const auto torus = terse::topology::torus(4, 4);
  const std::vector<int> dead{5};
  const auto s = terse::topology::survivors(torus, dead, false);
  REQUIRE(s.mixing.has_value());
  CHECK_FALSE(s.backup_edges);
  CHECK(s.mixing->world() == 15);
  check_doubly_stochastic(*s.mixing);
}

TEST_CASE("one-peer schedules are rebuilt over the survivors; other time-varying graphs are refused")
{
  const std::vector<int> dead{3};
  const auto exponential = terse::topology::survivors(terse::topology::one_peer_exponential(8), dead);
  REQUIRE(exponential.mixing.has_value());
  CHECK(exponential.mixing->world() == 7);
  CHECK(exponential.mixing->name() == "one-peer exponential");
  const auto exact = terse::topology::survivors(terse::topology::one_peer_exact(8), dead);
  REQUIRE(exact.mixing.has_value());
  CHECK(exact.mixing->world() == 7);
  CHECK(exact.mixing->rho() == 0.0);  // still exact over one period
  try {
    (void)terse::topology::survivors(terse::topology::random_matchings(8, 1), dead);
    FAIL("expected unsupported");
  } catch (const terse::error& e) {
    CHECK(e.code() == terse::errc::unsupported);
  }
  CHECK_THROWS_AS((void)terse::topology::survivors(terse::topology::ring(4), std::vector<int>{4}), terse::error);
}

// Gossip over real MPI processes gives the bits it gives over threads, for
// every mixer, on static, directed and time-varying graphs; a plan mismatch
// raises on every process.
#include <terse/collective/gossip.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/topk.hpp>
#include <terse/topology.hpp>

#include <cstring>
#include <utility>
#include <vector>

#include "mpi_test_support.hpp"

namespace {

std::vector<double> start(int rank, std::size_t n)
{
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = static_cast<double>(mpi_test::random_value(rank, i, 17));
  }
  return x;
}

template <class Mixer, class Transport>
std::vector<double> five_rounds(Transport& t, const terse::topology::graph& g, const Mixer& mixer)
{
  const std::size_t n = 777;
  std::vector<double> x = start(t.rank(), n);
  terse::gossip mix(t, n, g, mixer, terse::elements<double>{}, terse::gossip_options{.seed = 3});
  for (int round = 0; round < 5; ++round) {
    mix.mix(terse::host_span<double>(x));
  }
  x.push_back(mix.weight());
  return x;
}

template <class Mixer>
void check_mpi_matches_local(const terse::topology::graph& g, const Mixer& mixer)
{
  terse::mpi_transport mpi(MPI_COMM_WORLD, mpi_test::patient());
  const std::vector<double> over_mpi = five_rounds(mpi, g, mixer);
  std::vector<double> over_threads;
  const int me = mpi.rank();
  terse::run_local(mpi.size(), [&](terse::local_transport& local) {
    auto result = five_rounds(local, g, mixer);
    if (local.rank() == me) {
      over_threads = std::move(result);
    }
  });
  REQUIRE(over_mpi.size() == over_threads.size());
  CHECK(std::memcmp(over_mpi.data(), over_threads.data(), over_mpi.size() * sizeof(double)) == 0);
}

}  // namespace

TEST_CASE("gossip over MPI: D-PSGD averaging on a ring and the one-peer exponential graph equals threads")
{
  const int world = mpi_test::world_size();
  check_mpi_matches_local(terse::topology::ring(world), terse::mixer::average{});
  check_mpi_matches_local(terse::topology::one_peer_exponential(world), terse::mixer::average{});
  check_mpi_matches_local(terse::topology::random_matchings(world, 5), terse::mixer::average{});
}

TEST_CASE("gossip over MPI: push-sum on a directed graph equals threads")
{
  const int world = mpi_test::world_size();
  std::vector<std::pair<int, int>> arcs;
  for (int i = 0; i < world; ++i) {
    arcs.emplace_back(i, (i + 1) % world);
  }
  arcs.emplace_back(0, world / 2);
  check_mpi_matches_local(terse::topology::directed(world, arcs), terse::mixer::push_sum{});
}

TEST_CASE("gossip over MPI: CHOCO with top-k and QSGD equals threads")
{
  const int world = mpi_test::world_size();
  check_mpi_matches_local(terse::topology::ring(world),
                          terse::mixer::choco{terse::compress::topk{.density = 0.1f}, 0.3});
  check_mpi_matches_local(terse::topology::ring(world), terse::mixer::choco{terse::compress::qsgd<7>{}, 0.5});
}

TEST_CASE("gossip over MPI: ranks on different epochs raise mismatch on every process")
{
  terse::mpi_transport mpi(MPI_COMM_WORLD, mpi_test::patient());
  const auto g = terse::topology::ring(mpi.size()).with_epoch(mpi.rank() == 1 ? 2 : 0);
  terse::gossip mix(mpi, 8, g, terse::gossip_options{.check_plan = true});
  std::vector<float> x(8, 1.0f);
  try {
    mix.mix(terse::host_span<float>(x));
    FAIL("a plan mismatch went unnoticed");
  } catch (const terse::error& e) {
    CHECK(e.code() == terse::errc::mismatch);
  }
  CHECK(mix.rounds() == 0);
}

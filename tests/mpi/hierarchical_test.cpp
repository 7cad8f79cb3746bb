// The hierarchical allreduce over real MPI processes gives the bits it
// gives over threads with the same groups, dense and with a codec; with
// groups from the transport (ranks sharing a host) every rank holds the mean.
#include <terse/collective/hierarchical.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/residual.hpp>

#include <cstring>
#include <utility>
#include <vector>

#include "mpi_test_support.hpp"

namespace {

const terse::layout& hierarchy_layout()
{
  static const std::vector<std::size_t> sizes{2001, 9, 3333};
  static const terse::layout shape(sizes, 4000, 64);
  return shape;
}

template <class Transport, class... Policies>
std::vector<float> three_steps(Transport& t, const terse::groups& how, Policies... policies)
{
  terse::hierarchical_allreduce sync(t, how, hierarchy_layout(), policies...);
  std::vector<float> x(hierarchy_layout().total());
  std::vector<float> sum;
  for (int step = 0; step < 3; ++step) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = mpi_test::random_value(t.rank(), i, 31 + step);
    }
    sync.average(terse::host_span<float>(x));
    sum.insert(sum.end(), x.begin(), x.end());
  }
  return sum;
}

template <class... Policies>
void check_mpi_matches_local(const terse::groups& how, Policies... policies)
{
  terse::mpi_transport mpi(MPI_COMM_WORLD, mpi_test::patient());
  const std::vector<float> over_mpi = three_steps(mpi, how, policies...);
  std::vector<float> over_threads;
  const int me = mpi.rank();
  terse::run_local(mpi.size(), [&](terse::local_transport& local) {
    auto result = three_steps(local, how, policies...);
    if (local.rank() == me) {
      over_threads = std::move(result);
    }
  });
  REQUIRE(over_mpi.size() == over_threads.size());
  CHECK(std::memcmp(over_mpi.data(), over_threads.data(), over_mpi.size() * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("hierarchical allreduce over MPI: dense, groups of two, equals threads")
{
  check_mpi_matches_local(terse::groups::of_size(2));
}

TEST_CASE("hierarchical allreduce over MPI: uniform<4> with residual, unequal groups, equals threads")
{
  // ranks {0} and {1, 2, 3} (with four ranks): one shard, owned by rank 0 and rank 1
  check_mpi_matches_local(terse::groups::of_size(mpi_test::world_size() - 1), terse::compress::uniform<4>{},
                          terse::feedback::residual{});
}

TEST_CASE("hierarchical allreduce over MPI: groups of ranks sharing a host hold the mean")
{
  terse::mpi_transport mpi(MPI_COMM_WORLD, mpi_test::patient());
  terse::hierarchical_allreduce sync(mpi, terse::groups::shared_memory(), hierarchy_layout());
  std::vector<float> x(hierarchy_layout().total());
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>((i + static_cast<std::size_t>(mpi.rank()) * 5) % 17);
  }
  sync.average(terse::host_span<float>(x));
  const int world = mpi.size();
  for (std::size_t i = 0; i < x.size(); ++i) {
    float sum = 0.0f;
    for (int r = 0; r < world; ++r) {
      sum += static_cast<float>((i + static_cast<std::size_t>(r) * 5) % 17);
    }
    REQUIRE(x[i] == sum / static_cast<float>(world));
  }
  CHECK(sync.group_count() * sync.shard_count() <= world);
}

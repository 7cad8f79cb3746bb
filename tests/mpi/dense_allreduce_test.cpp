// The dense allreduce collective over real MPI processes (W = 4): exact for
// integer-valued gradients, bit-identical on every rank for random ones.
#include <terse/collective/allreduce.hpp>

#include "mpi_test_support.hpp"

TEST_CASE("dense allreduce over MPI averages integer-valued gradients exactly")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const std::vector<std::size_t> sizes{784 * 64, 64, 64 * 10, 10, 1};
  const terse::layout shape(sizes, 4096);
  terse::allreduce sync(transport, shape);
  const int world = transport.size();
  std::vector<float> grads(shape.total());
  for (std::size_t i = 0; i < grads.size(); ++i) {
    grads[i] = static_cast<float>(world * (static_cast<int>(i % 11) - 5) + 2 * transport.rank());
  }
  CHECK(sync.on_gradients(terse::host_span<float>(grads)) == terse::sync_action::average);
  // mean over r of (world*k + 2r) = world*k + (world - 1): exact
  for (std::size_t i = 0; i < grads.size(); ++i) {
    REQUIRE(grads[i] == static_cast<float>(world * (static_cast<int>(i % 11) - 5) + world - 1));
  }
}

TEST_CASE("dense allreduce over MPI gives every rank the same bits as a rank-order serial mean")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const terse::layout shape = terse::layout::single(50001);
  terse::allreduce sync(transport, shape);
  const auto value = [](int rank, std::size_t i) {
    const terse::random_stream s{.seed = 3, .step = 0, .stream = static_cast<std::uint32_t>(rank)};
    return s.uniform(i) - 0.5f;
  };
  std::vector<float> grads(shape.total());
  for (std::size_t i = 0; i < grads.size(); ++i) {
    grads[i] = value(transport.rank(), i);
  }
  sync.average(terse::host_span<float>(grads));
  for (std::size_t i = 0; i < grads.size(); ++i) {
    float sum = value(0, i);
    for (int r = 1; r < transport.size(); ++r) {
      sum += value(r, i);
    }
    const float expected = sum / static_cast<float>(transport.size());
    REQUIRE(std::memcmp(&grads[i], &expected, sizeof(float)) == 0);
  }
}

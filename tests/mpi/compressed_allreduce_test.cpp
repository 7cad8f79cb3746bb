// The compressed allreduce over real MPI processes (W = 4), one codec per
// aggregation path: every rank's result is bit-identical to the same four
// ranks run as threads on the local transport (both reduce in rank order),
// so the MPI path is checked against a reference computed in-process.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/randomk.hpp>
#include <terse/compress/threshold.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/residual.hpp>
#if defined(TERSE_WITH_BLAS)
#include <terse/compress/powersgd.hpp>
#endif

#include <sstream>

#include "mpi_test_support.hpp"

namespace {

const terse::layout& test_layout()
{
  static const std::vector<std::size_t> sizes{4000, 30, 2049, 8, 3001};
  static const terse::layout shape(sizes, 6100, /*dense_below=*/64);
  return shape;
}

std::vector<float> gradient(int rank, int step)
{
  const terse::random_stream s{
      .seed = 17, .step = static_cast<std::uint32_t>(step), .stream = static_cast<std::uint32_t>(rank)};
  std::vector<float> g(test_layout().total());
  for (std::size_t i = 0; i < g.size(); ++i) {
    g[i] = (s.uniform(i) - 0.5f) * 0.02f;
  }
  return g;
}

/// Three steps of the collective with `Codec` on any transport; the last result.
template <class Codec, class Feedback, class Transport>
std::vector<float> three_steps(Transport& t, const Codec& codec, const terse::allreduce_config& config = {})
{
  terse::allreduce<Codec, Feedback, Transport> sync(t, test_layout(), config, codec);
  std::vector<float> g;
  for (int step = 0; step < 3; ++step) {
    g = gradient(t.rank(), step);
    sync.average(terse::host_span<float>(g));
  }
  return g;
}

template <class Codec, class Feedback>
void check_mpi_matches_local(const Codec& codec, const terse::allreduce_config& config = {})
{
  terse::mpi_transport mpi(MPI_COMM_WORLD, mpi_test::patient());
  const std::vector<float> over_mpi = three_steps<Codec, Feedback>(mpi, codec, config);
  std::vector<float> over_threads;
  const int me = mpi.rank();
  terse::run_local(mpi.size(), [&](terse::local_transport& local) {
    auto result = three_steps<Codec, Feedback>(local, codec, config);
    if (local.rank() == me) {
      over_threads = std::move(result);
    }
  });
  REQUIRE(over_mpi.size() == over_threads.size());
  CHECK(std::memcmp(over_mpi.data(), over_threads.data(), over_mpi.size() * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("compressed allreduce over MPI: summable bf16 cast equals the local transport bit for bit")
{
  check_mpi_matches_local<terse::compress::cast_bf16, terse::feedback::none>({});
}

TEST_CASE("compressed allreduce over MPI: summable random-k with residual equals the local transport")
{
  check_mpi_matches_local<terse::compress::randomk, terse::feedback::residual>({.density = 0.05});
}

TEST_CASE("compressed allreduce over MPI: requantizable uniform<4> equals the local transport bit for bit")
{
  check_mpi_matches_local<terse::compress::uniform<4>, terse::feedback::none>({});
}

TEST_CASE("compressed allreduce over MPI: gather-only top-k with residual equals the local transport")
{
  check_mpi_matches_local<terse::compress::topk, terse::feedback::residual>({.density = 0.02f});
}

TEST_CASE("compressed allreduce over MPI: the sparse reduce-scatter equals the local transport bit for bit")
{
  // top-k: fixed sizes, two phases; threshold: sizes announced, four phases
  const terse::allreduce_config sparse{.sparse = terse::sparse_aggregation::reduce_scatter};
  check_mpi_matches_local<terse::compress::topk, terse::feedback::residual>({.density = 0.02f}, sparse);
  check_mpi_matches_local<terse::compress::threshold, terse::feedback::residual>({.tau = 0.008f}, sparse);
}

#if defined(TERSE_WITH_BLAS)
TEST_CASE("compressed allreduce over MPI: PowerSGD with residual equals the local transport")
{
  check_mpi_matches_local<terse::compress::powersgd, terse::feedback::residual>({.rank = 2});
}
#endif

TEST_CASE("compressed allreduce over MPI: non-finite input on one rank raises on every rank")
{
  terse::mpi_transport mpi(MPI_COMM_WORLD, mpi_test::patient());
  terse::allreduce<terse::compress::uniform<8>, terse::feedback::residual, terse::mpi_transport> sync(mpi,
                                                                                                      test_layout());
  auto g = gradient(mpi.rank(), 0);
  if (mpi.rank() == 1) {
    g[5000] = std::numeric_limits<float>::infinity();
  }
  terse::errc code = terse::errc::internal;
  try {
    sync.average(terse::host_span<float>(g));
  } catch (const terse::error& e) {
    code = e.code();
  }
  CHECK(code == terse::errc::non_finite);
  CHECK(mpi.healthy());
}

TEST_CASE("compressed allreduce over MPI: a failed step is a transaction on every rank")
{
  // uniform<2> with residual feedback, NaN in the last bucket on rank 1:
  // every rank raises, and the state and the buffer are exactly as before.
  terse::mpi_transport mpi(MPI_COMM_WORLD, mpi_test::patient());
  terse::allreduce sync(mpi, test_layout(), terse::compress::uniform<2>{}, terse::feedback::residual{});
  auto g = gradient(mpi.rank(), 0);
  sync.average(terse::host_span<float>(g));  // a residual to keep
  std::ostringstream before;
  sync.save(before);
  auto bad = gradient(mpi.rank(), 1);
  if (mpi.rank() == 1) {
    bad[test_layout().total() - 10] = std::numeric_limits<float>::quiet_NaN();
  }
  const std::vector<float> passed = bad;
  terse::errc code = terse::errc::internal;
  try {
    sync.average(terse::host_span<float>(bad));
  } catch (const terse::error& e) {
    code = e.code();
  }
  CHECK(code == terse::errc::non_finite);
  std::ostringstream after;
  sync.save(after);
  CHECK(after.str() == before.str());
  CHECK(std::memcmp(bad.data(), passed.data(), bad.size() * sizeof(float)) == 0);
  CHECK(mpi.healthy());
}

TEST_CASE("compressed allreduce over MPI: buckets started in rank-dependent orders equal the synchronous result")
{
  terse::mpi_transport mpi(MPI_COMM_WORLD, mpi_test::patient());
  const terse::layout& shape = test_layout();
  terse::allreduce in_order(mpi, shape, terse::compress::uniform<4>{}, terse::feedback::residual{});
  terse::allreduce shuffled(mpi, shape, terse::compress::uniform<4>{}, terse::feedback::residual{});
  const std::size_t buckets = shape.buckets().size();
  REQUIRE(buckets >= 2);
  for (int step = 0; step < 3; ++step) {
    auto a = gradient(mpi.rank(), step);
    auto b = a;
    in_order.average(terse::host_span<float>(a));
    for (std::size_t i = 0; i < buckets; ++i) {
      const terse::bucket& bucket = shape.buckets()[(i + static_cast<std::size_t>(mpi.rank())) % buckets];
      shuffled.start(bucket.id, terse::host_span<float>(b).subspan(bucket.offset, bucket.count));
    }
    shuffled.wait_all();
    CHECK(a == b);
  }
}

// Never a hang, never garbage: mismatched calls raise on every rank and leave
// the transport usable; a silent peer gives errc::timeout within the deadline
// and turns the transport unhealthy.
#include "mpi_test_support.hpp"

using mpi_test::name;
using mpi_test::outcome;
using terse::errc;
using terse::host_span;
using terse::reduce_op;

namespace {

// After a mismatch every rank must still be able to reduce correctly.
void check_still_works(terse::mpi_transport& transport)
{
  std::vector<std::int32_t> one{1};
  transport.allreduce(host_span<std::int32_t>(one), reduce_op::sum);
  CHECK(one[0] == transport.size());
  CHECK(transport.healthy());
}

std::string expected_for(bool odd_one_out, errc self, errc others)
{
  return name(odd_one_out ? self : others);
}

}  // namespace

TEST_CASE("checked mode: one rank with a different count makes every rank raise mismatch")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(true));
  const bool odd = transport.rank() == transport.size() - 1;
  std::vector<float> buffer(odd ? 11 : 10, 1.0f);
  CHECK(outcome([&] { transport.allreduce(host_span<float>(buffer), reduce_op::sum); }) == name(errc::mismatch));
  check_still_works(transport);
}

TEST_CASE("checked mode: one rank calling allgather while the others allreduce makes every rank raise mismatch")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(true));
  const auto world = static_cast<std::size_t>(transport.size());
  const bool odd = transport.rank() == 1 % transport.size();
  std::vector<float> in(4, 1.0f), out(4 * world);
  CHECK(outcome([&] {
          if (odd) {
            transport.allgather(host_span<const float>(in), host_span<float>(out));
          } else {
            transport.allreduce(host_span<float>(in), reduce_op::sum);
          }
        }) == name(errc::mismatch));
  check_still_works(transport);
}

TEST_CASE("checked mode: invalid arguments on one rank are invalid_argument there and mismatch elsewhere")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(true));
  const bool odd = transport.rank() == 0;
  std::vector<double> in(odd ? 7 : 8, 1.0), out(8);
  CHECK(outcome([&] { transport.allreduce(host_span<const double>(in), host_span<double>(out), reduce_op::sum); }) ==
        expected_for(odd, errc::invalid_argument, errc::mismatch));
  check_still_works(transport);

  // allgatherv with counts that do not match this rank's input.
  const auto world = static_cast<std::size_t>(transport.size());
  std::vector<std::size_t> counts(world, 2);
  std::vector<float> mine(odd ? 3 : 2), all(2 * world);
  CHECK(outcome([&] {
          transport.allgatherv(host_span<const float>(mine), host_span<float>(all),
                               host_span<const std::size_t>(counts));
        }) == expected_for(odd, errc::invalid_argument, errc::mismatch));
  check_still_works(transport);

  // A broadcast root outside the world on one rank.
  std::vector<float> buffer(3);
  CHECK(outcome([&] { transport.broadcast(host_span<float>(buffer), odd ? transport.size() : 0); }) ==
        expected_for(odd, errc::invalid_argument, errc::mismatch));
  check_still_works(transport);
}

TEST_CASE("checked mode: different roots, operators, element types or counts arrays are mismatches")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(true));
  const int rank = transport.rank();
  const bool odd = rank == transport.size() - 1;
  const std::string mismatch = name(errc::mismatch);

  std::vector<float> buffer(5, 1.0f);
  CHECK(outcome([&] { transport.broadcast(host_span<float>(buffer), odd ? 1 : 0); }) == mismatch);
  CHECK(outcome([&] { transport.allreduce(host_span<float>(buffer), odd ? reduce_op::max : reduce_op::sum); }) ==
        mismatch);
  std::vector<double> wide(5, 1.0);
  CHECK(outcome([&] {
          if (odd) {
            transport.allreduce(host_span<double>(wide), reduce_op::sum);
          } else {
            transport.allreduce(host_span<float>(buffer), reduce_op::sum);
          }
        }) == mismatch);

  // Same total, different split: only the counts array tells them apart.
  const auto world = static_cast<std::size_t>(transport.size());
  std::vector<std::size_t> counts(world, 2);
  if (odd && world > 1) {
    counts[0] = 3;
    counts[1] = 1;
  }
  std::vector<float> mine(counts[static_cast<std::size_t>(rank)]), all(2 * world);
  CHECK(outcome([&] {
          transport.allgatherv(host_span<const float>(mine), host_span<float>(all),
                               host_span<const std::size_t>(counts));
        }) == (world > 1 ? mismatch : std::string("no error")));

  // Ranks must split messages the same way.
  transport.set_max_chunk_elements(odd ? 7 : 8);
  CHECK(outcome([&] { transport.allreduce(host_span<float>(buffer), reduce_op::sum); }) == mismatch);
  transport.set_max_chunk_elements(terse::mpi_transport::default_max_chunk_elements);
  check_still_works(transport);
}

TEST_CASE("average of an integer type is invalid_argument on every rank, in both modes")
{
  for (const bool checked : {true, false}) {
    terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(checked));
    std::vector<std::int32_t> values(4, 2);
    CHECK(outcome([&] { transport.allreduce(host_span<std::int32_t>(values), reduce_op::average); }) ==
          name(errc::invalid_argument));
    check_still_works(transport);
  }
}

TEST_CASE("unchecked mode: bad sizes are invalid_argument at once, without communicating")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(false));
  const auto world = static_cast<std::size_t>(transport.size());
  std::vector<float> in(3), out(4), gathered(3 * world + 1);
  const auto start = mpi_test::clock::now();
  CHECK(outcome([&] { transport.allreduce(host_span<const float>(in), host_span<float>(out), reduce_op::sum); }) ==
        name(errc::invalid_argument));
  CHECK(outcome([&] { transport.reduce_scatter(host_span<const float>(in), host_span<float>(out), reduce_op::sum); }) ==
        name(errc::invalid_argument));
  CHECK(outcome([&] { transport.allgather(host_span<const float>(in), host_span<float>(gathered)); }) ==
        name(errc::invalid_argument));
  CHECK(mpi_test::milliseconds_since(start) < 1000.0);
  check_still_works(transport);
}

namespace {

// One rank (the last) arrives `late` after the others, all with a short
// timeout. The punctual ranks must raise errc::timeout after timeout and
// within timeout + slack. The late rank still makes its call, so the
// requests the others abandoned can complete; its own call then times out
// too (the others are gone), and MPI_Barrier on the world (which drives MPI's
// progress on every rank) lines everyone up again before the transports are
// destroyed. That way no request is left pending at MPI_Finalize and mpirun
// exits cleanly.
void check_silent_peer(bool checked)
{
  using namespace std::chrono_literals;
  constexpr auto timeout = 300ms;
  constexpr double slack_ms = 500.0;  // measured overshoot: 1-8 ms; the rest is for a loaded 2-core CI box
  constexpr auto late = 1200ms;
  const int world = mpi_test::world_size();
  const bool is_late = mpi_test::world_rank() == world - 1;
  auto transport = std::make_unique<terse::mpi_transport>(
      MPI_COMM_WORLD, terse::transport_options{.timeout = timeout, .checked = checked});
  std::vector<float> buffer(64, 1.0f);
  if (is_late) {
    std::this_thread::sleep_for(late);
  }
  const auto start = mpi_test::clock::now();
  const std::string result = outcome([&] { transport->allreduce(host_span<float>(buffer), reduce_op::sum); });
  const double elapsed = mpi_test::milliseconds_since(start);
  const std::string who = "rank " + std::to_string(transport->rank()) + (is_late ? " (late)" : "");
  MESSAGE(who << ": " << result << " after " << elapsed << " ms");
  CHECK(result == name(errc::timeout));
  CHECK(elapsed >= static_cast<double>(timeout.count()) - 1.0);
  CHECK(elapsed < static_cast<double>(timeout.count()) + slack_ms);
  CHECK_FALSE(transport->healthy());

  // Broken for good: every verb now fails at once with peer_failed.
  const auto again = mpi_test::clock::now();
  CHECK(outcome([&] { transport->allreduce(host_span<float>(buffer), reduce_op::sum); }) == name(errc::peer_failed));
  CHECK(outcome([&] { transport->barrier(); }) == name(errc::peer_failed));
  CHECK(outcome([&] { transport->send(host_span<const float>(buffer), 0, 0); }) == name(errc::peer_failed));
  CHECK(mpi_test::milliseconds_since(again) < 50.0);

  MPI_Barrier(MPI_COMM_WORLD);
  const auto teardown = mpi_test::clock::now();
  transport.reset();
  const double teardown_ms = mpi_test::milliseconds_since(teardown);
  MESSAGE("rank " << mpi_test::world_rank() << ": destructor took " << teardown_ms << " ms");
  CHECK(teardown_ms < static_cast<double>(timeout.count()) + slack_ms);
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace

TEST_CASE("checked mode: a silent peer gives timeout within the deadline, then every verb is peer_failed")
{
  check_silent_peer(true);
}

TEST_CASE("unchecked mode: a peer silent in the middle of the data exchange gives timeout, then peer_failed")
{
  check_silent_peer(false);
}

TEST_CASE("a recv nobody answers times out, and the destructor returns promptly")
{
  using namespace std::chrono_literals;
  const int rank = mpi_test::world_rank();
  double destroy_ms = 0.0;
  {
    auto transport = std::make_unique<terse::mpi_transport>(
        MPI_COMM_WORLD, terse::transport_options{.timeout = 200ms, .checked = true});
    if (rank == 0) {
      std::vector<float> buffer(8);
      const auto start = mpi_test::clock::now();
      CHECK(outcome([&] { transport->recv(host_span<float>(buffer), mpi_test::world_size() - 1, 9); }) ==
            name(errc::timeout));
      CHECK(mpi_test::milliseconds_since(start) < 200.0 + 500.0);
      CHECK_FALSE(transport->healthy());
    }
    const auto start = mpi_test::clock::now();
    transport.reset();
    destroy_ms = mpi_test::milliseconds_since(start);
  }
  // The cancelled receive leaves nothing to wait for.
  CHECK(destroy_ms < 200.0 + 500.0);
  MPI_Barrier(MPI_COMM_WORLD);
}

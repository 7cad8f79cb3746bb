// The API surface: concepts, what must not compile, construction errors and
// the MPI session.
#include <terse/core/concept_checks.hpp>
#include <terse/core/concepts.hpp>

#include "mpi_test_support.hpp"

using terse::host_span;
using terse::reduce_op;

static_assert(terse::concepts::collective_transport<terse::mpi_transport>);
static_assert(terse::concepts::point_to_point_transport<terse::mpi_transport>);
static_assert(terse::concepts::transport<terse::mpi_transport>);
static_assert(terse::concepts::check_collective_transport<terse::mpi_transport>());
static_assert(!std::is_copy_constructible_v<terse::mpi_transport>);

namespace {
template <class T>
concept can_allreduce = requires(terse::mpi_transport& t, host_span<T> buffer)
{
  t.allreduce(buffer, reduce_op::sum);
};
template <class T>
concept can_reduce_scatter = requires(terse::mpi_transport& t, host_span<const T> in, host_span<T> out)
{
  t.reduce_scatter(in, out, reduce_op::sum);
};
template <class T>
concept can_allgather = requires(terse::mpi_transport& t, host_span<const T> in, host_span<T> out)
{
  t.allgather(in, out);
};
template <class T>
concept can_receive_into = requires(terse::mpi_transport& t, host_span<T> out)
{
  t.recv(out, 0, 0);
};
}  // namespace

// std::byte moves but never reduces; read-only spans never receive.
static_assert(can_allreduce<float> && can_allreduce<terse::bf16> && can_allreduce<std::uint8_t>);
static_assert(!can_allreduce<std::byte> && !can_reduce_scatter<std::byte>);
static_assert(can_allgather<std::byte>);
static_assert(!can_allreduce<const float> && !can_receive_into<const float>);

TEST_CASE("element type and space come from the output span; inputs convert")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  std::vector<float> in(4, 1.0f), out(4);
  // A std::vector for the input converts to host_span<const float>.
  transport.allreduce(in, host_span<float>(out), reduce_op::sum);
  CHECK(out == std::vector<float>(4, static_cast<float>(transport.size())));
  // A mutable span where a read-only one is expected.
  transport.allreduce(host_span<float>(in), host_span<float>(out), reduce_op::max);
  CHECK(out == std::vector<float>(4, 1.0f));
  CHECK(transport.options().timeout == mpi_test::patient().timeout);
  CHECK(transport.options().checked);
  CHECK(transport.rank() == mpi_test::world_rank());
  CHECK(transport.size() == mpi_test::world_size());
}

TEST_CASE("construction rejects MPI_COMM_NULL and a non-positive timeout without communicating")
{
  const std::string invalid = mpi_test::name(terse::errc::invalid_argument);
  CHECK(mpi_test::outcome([] { terse::mpi_transport t(MPI_COMM_NULL); }) == invalid);
  CHECK(mpi_test::outcome([] {
          terse::mpi_transport t(MPI_COMM_WORLD, terse::transport_options{.timeout = std::chrono::milliseconds(0)});
        }) == invalid);
}

TEST_CASE("an mpi_session inside a running MPI leaves MPI alone")
{
  {
    terse::mpi_session nested;
    CHECK_FALSE(nested.owns_mpi());
    CHECK(nested.thread_level() >= MPI_THREAD_SERIALIZED);
  }
  int finalized = 1;
  MPI_Finalized(&finalized);
  CHECK(finalized == 0);
}

TEST_CASE("the default timeout and checked flag follow transport_options")
{
  terse::mpi_transport transport;
  CHECK(transport.options().timeout == std::chrono::seconds(60));
  CHECK(transport.options().checked == TERSE_CHECKED_DEFAULT);
  CHECK(transport.healthy());
  transport.barrier();
}

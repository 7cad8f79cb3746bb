// Sub-transports of mpi_transport (split, split_shared) between real
// processes: placement by colour and key with unequal group sizes, exact
// verbs and exchanges on the sub-transports, a negative colour, the ranks of
// one host, mismatched split calls, a late peer, moves, and a decorator
// holding a split result by value.
#include <terse/core/concepts.hpp>
#include <terse/transport/metered.hpp>

#include <array>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include "mpi_test_support.hpp"

using mpi_test::name;
using mpi_test::outcome;
using terse::errc;
using terse::host_span;
using terse::reduce_op;

static_assert(terse::concepts::splittable_transport<terse::mpi_transport>);
static_assert(std::is_nothrow_move_constructible_v<terse::mpi_transport>);
static_assert(std::is_nothrow_move_assignable_v<terse::mpi_transport>);
static_assert(std::is_same_v<decltype(std::declval<terse::metered<terse::mpi_transport&>&>().split(0, 0)),
                             terse::metered<terse::mpi_transport>>);

namespace {

// The parent ranks of `sub`'s members in sub rank order, and a check that
// every verb on `sub` gives exact results.
std::vector<std::int32_t> members_of(terse::mpi_transport& sub, int parent_rank)
{
  const std::array<std::int32_t, 1> mine{parent_rank};
  std::vector<std::int32_t> members(static_cast<std::size_t>(sub.size()));
  sub.allgather(host_span<const std::int32_t>(mine), host_span<std::int32_t>(members));
  return members;
}

void check_verbs(terse::mpi_transport& sub, int parent_rank, const std::vector<std::int32_t>& members)
{
  const int s = sub.rank();
  const int w = sub.size();
  std::int64_t member_sum = 0;
  for (const std::int32_t m : members) {
    member_sum += m;
  }
  // allreduce over 7 elements (not a multiple of most group sizes).
  std::vector<std::int64_t> values(7);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = parent_rank + static_cast<std::int64_t>(i);
  }
  sub.allreduce(host_span<std::int64_t>(values), reduce_op::sum);
  for (std::size_t i = 0; i < values.size(); ++i) {
    CHECK(values[i] == member_sum + w * static_cast<std::int64_t>(i));
  }
  // reduce_scatter: block m of every input is (m + 1) * parent rank.
  std::vector<std::int64_t> blocks(static_cast<std::size_t>(w));
  for (int m = 0; m < w; ++m) {
    blocks[static_cast<std::size_t>(m)] = (m + 1) * parent_rank;
  }
  std::array<std::int64_t, 1> own{};
  sub.reduce_scatter(host_span<const std::int64_t>(blocks), host_span<std::int64_t>(own), reduce_op::sum);
  CHECK(own[0] == (s + 1) * member_sum);
  // broadcast from the last sub rank.
  std::array<double, 2> root_value{static_cast<double>(parent_rank), 0.5};
  sub.broadcast(host_span<double>(root_value), w - 1);
  CHECK(root_value[0] == static_cast<double>(members.back()));
  // A ring exchange and a ring sendrecv.
  std::array<std::int32_t, 2> out{parent_rank, -parent_rank};
  std::array<std::int32_t, 2> in{};
  const int left = (s + w - 1) % w;
  const std::array sends{terse::outgoing<>{.peer = (s + 1) % w, .bytes = std::as_bytes(std::span(out))}};
  const std::array recvs{terse::incoming<>{.peer = left, .bytes = std::as_writable_bytes(std::span(in))}};
  sub.wait(sub.start_exchange(host_span<const terse::outgoing<>>(sends), host_span<const terse::incoming<>>(recvs), 3));
  CHECK(in[0] == members[static_cast<std::size_t>(left)]);
  CHECK(in[1] == -members[static_cast<std::size_t>(left)]);
  std::array<std::int32_t, 2> again{};
  sub.sendrecv(host_span<const std::int32_t>(out), (s + 1) % w, host_span<std::int32_t>(again), left, 4);
  CHECK(again == in);
  sub.barrier();
  CHECK(sub.healthy());
}

}  // namespace

TEST_CASE("split over MPI: unequal groups ranked by (key, parent rank) give exact verbs")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const int world = transport.size();
  REQUIRE(world >= 3);
  // Colour 0: ranks 0 .. world-2; colour 1: the last rank alone by colour.
  // Keys reverse the order inside a group.
  const int colour = rank < world - 1 ? 0 : 1;
  terse::mpi_transport sub = transport.split(colour, -rank);
  const int group = colour == 0 ? world - 1 : 1;
  REQUIRE(sub.size() == group);
  CHECK(sub.rank() == (colour == 0 ? world - 2 - rank : 0));
  CHECK(sub.options().timeout == transport.options().timeout);
  CHECK(sub.options().checked == transport.options().checked);
  CHECK(sub.max_chunk_elements() == transport.max_chunk_elements());
  const std::vector<std::int32_t> members = members_of(sub, rank);
  for (int s = 0; s < sub.size(); ++s) {
    CHECK(members[static_cast<std::size_t>(s)] == (colour == 0 ? world - 2 - s : world - 1));
  }
  check_verbs(sub, rank, members);

  // Traffic on the parent is not disturbed by (or confused with) the sub's.
  std::vector<std::int64_t> everyone{rank};
  transport.allreduce(host_span<std::int64_t>(everyone), reduce_op::sum);
  CHECK(everyone[0] == world * (world - 1) / 2);

  // Two groups of different sizes, keys tied: ordered by parent rank.
  terse::mpi_transport halves = transport.split(rank % 2, 0);
  CHECK(halves.rank() == rank / 2);
  CHECK(halves.size() == (world + 1 - rank % 2) / 2);
  check_verbs(halves, rank, members_of(halves, rank));

  // A split of a split.
  terse::mpi_transport nested = halves.split(halves.rank() / 2, halves.rank());
  const std::vector<std::int32_t> nested_members = members_of(nested, rank);
  for (std::size_t s = 0; s < nested_members.size(); ++s) {
    CHECK(nested_members[s] % 2 == rank % 2);
    CHECK(nested_members[s] / 2 / 2 == rank / 2 / 2);
  }
  check_verbs(nested, rank, nested_members);
  CHECK(transport.healthy());
}

TEST_CASE("split over MPI in unchecked mode, and a negative colour gives a transport of the rank alone")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(false));
  const int rank = transport.rank();
  const int world = transport.size();
  terse::mpi_transport sub = transport.split(rank == 1 ? -1 : 7, rank);
  CHECK_FALSE(sub.options().checked);
  if (rank == 1) {
    CHECK(sub.size() == 1);
    CHECK(sub.rank() == 0);
  } else {
    CHECK(sub.size() == world - 1);
    CHECK(sub.rank() == rank - (rank > 1 ? 1 : 0));
  }
  check_verbs(sub, rank, members_of(sub, rank));
  terse::mpi_transport alone = transport.split(-3, 0);
  CHECK(alone.size() == 1);
  check_verbs(alone, rank, members_of(alone, rank));
}

TEST_CASE("split_shared over MPI groups the ranks of one host")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const int world = transport.size();
  // Which ranks share this rank's host, by processor name (plain MPI).
  std::array<char, MPI_MAX_PROCESSOR_NAME> mine{};
  int length = 0;
  MPI_Get_processor_name(mine.data(), &length);
  std::vector<char> names(mine.size() * static_cast<std::size_t>(world));
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_CHAR, names.data(), static_cast<int>(mine.size()),
                MPI_CHAR, MPI_COMM_WORLD);
  std::vector<std::int32_t> same_host;
  for (int r = 0; r < world; ++r) {
    if (std::strncmp(names.data() + mine.size() * static_cast<std::size_t>(r), mine.data(), mine.size()) == 0) {
      same_host.push_back(r);
    }
  }
  terse::mpi_transport shared = transport.split_shared();
  const std::vector<std::int32_t> members = members_of(shared, rank);
  CHECK(members == same_host);  // ranked by parent rank
  if constexpr (!terse::detail::mpi::is_smpi) {
    CHECK(shared.size() == world);  // mpirun starts every rank on this machine
  }
  check_verbs(shared, rank, members);
}

TEST_CASE("split and split_shared made by different ranks are a mismatch everywhere, and the transport stays usable")
{
  for (const bool checked : {true, false}) {
    CAPTURE(checked);
    terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(checked));
    CHECK(outcome([&] {
            if (transport.rank() == 0) {
              (void)transport.split_shared();
            } else {
              (void)transport.split(0, transport.rank());
            }
          }) == name(errc::mismatch));
    CHECK(transport.healthy());
    terse::mpi_transport sub = transport.split(0, 0);
    CHECK(sub.size() == transport.size());
  }
}

TEST_CASE("split over MPI: a late peer is a timeout within the deadline, never a hang")
{
  using namespace std::chrono_literals;
  constexpr auto timeout = 300ms;
  const int world = mpi_test::world_size();
  const bool is_late = mpi_test::world_rank() == world - 1;
  auto transport = std::make_unique<terse::mpi_transport>(MPI_COMM_WORLD, terse::transport_options{.timeout = timeout});
  if (is_late) {
    std::this_thread::sleep_for(1200ms);
  }
  const auto start = mpi_test::clock::now();
  CHECK(outcome([&] { (void)transport->split(0, 0); }) == name(errc::timeout));
  CHECK(mpi_test::milliseconds_since(start) < static_cast<double>(timeout.count()) + 500.0);
  CHECK_FALSE(transport->healthy());
  CHECK(outcome([&] { (void)transport->split_shared(); }) == name(errc::peer_failed));
  MPI_Barrier(MPI_COMM_WORLD);
  transport.reset();
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_CASE("mpi_transport moves: the moved-to transport works, the moved-from one frees nothing")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  transport.set_max_chunk_elements(3);
  std::optional<terse::mpi_transport> moved_from;
  moved_from.emplace(MPI_COMM_WORLD, mpi_test::patient());
  terse::mpi_transport moved(std::move(*moved_from));
  CHECK_FALSE(moved_from->healthy());
  moved_from.reset();  // frees nothing: `moved` owns the communicators
  std::vector<std::int64_t> values(10, 1);
  moved.allreduce(host_span<std::int64_t>(values), reduce_op::sum);
  CHECK(values == std::vector<std::int64_t>(10, moved.size()));

  // Assignment frees what the target had and takes the source's.
  moved = std::move(transport);
  CHECK(moved.max_chunk_elements() == 3);
  check_verbs(moved, moved.rank(), members_of(moved, moved.rank()));

  // A decorator holds a split result by value.
  terse::metered parent(moved);
  terse::metered<terse::mpi_transport> sub = parent.split(moved.rank() % 2, moved.rank());
  std::vector<float> grads(12, 1.0f);
  sub.allreduce(host_span<float>(grads), reduce_op::sum);
  CHECK(grads == std::vector<float>(12, static_cast<float>(sub.size())));
  CHECK(sub.counts(terse::verb::allreduce).calls == 1);
  CHECK(parent.counts().total().calls == 0);
}

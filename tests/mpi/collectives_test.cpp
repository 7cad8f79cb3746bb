// Every collective verb, every element type, exact results on integer-valued
// inputs (which no summation order can round), including n = 0, n = 1 and
// sizes that do not divide by the world size.
#include <array>

#include "mpi_test_support.hpp"

using mpi_test::from_int;
using terse::host_span;
using terse::reduce_op;

#define TERSE_REDUCIBLE_TYPES \
  float, double, terse::fp16, terse::bf16, std::int32_t, std::int64_t, std::uint32_t, std::uint64_t, std::uint8_t
#define TERSE_ALL_TYPES TERSE_REDUCIBLE_TYPES, std::byte

namespace {
constexpr std::array<std::size_t, 5> sizes{0, 1, 3, 5, 103};
}  // namespace

TEST_CASE_TEMPLATE("allreduce sums, maxes and mins integer-valued inputs exactly, in and out of place", T,
                   TERSE_REDUCIBLE_TYPES)
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const int world = transport.size();
  for (const std::size_t n : sizes) {
    CAPTURE(n);
    std::vector<T> in(n);
    std::vector<T> sum(n), max(n), min(n), want_sum(n), want_max(n), want_min(n);
    for (std::size_t i = 0; i < n; ++i) {
      const int v = static_cast<int>(i % 5);
      in[i] = from_int<T>(rank + v);
      want_sum[i] = from_int<T>(world * (world - 1) / 2 + world * v);
      want_max[i] = from_int<T>(world - 1 + v);
      want_min[i] = from_int<T>(v);
    }
    transport.allreduce(host_span<const T>(in), host_span<T>(sum), reduce_op::sum);
    transport.allreduce(host_span<const T>(in), host_span<T>(max), reduce_op::max);
    transport.allreduce(host_span<const T>(in), host_span<T>(min), reduce_op::min);
    CHECK(mpi_test::first_difference(sum, want_sum) == -1);
    CHECK(mpi_test::first_difference(max, want_max) == -1);
    CHECK(mpi_test::first_difference(min, want_min) == -1);

    std::vector<T> in_place = in;
    transport.allreduce(host_span<T>(in_place), reduce_op::sum);
    CHECK(mpi_test::same_bits(in_place, sum));
  }
  CHECK(transport.healthy());
}

TEST_CASE_TEMPLATE("average is the sum divided by the world size", T, float, double, terse::fp16, terse::bf16)
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const int world = transport.size();
  const std::size_t n = 31;
  std::vector<T> in(n), out(n), want(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int v = static_cast<int>(i % 3);
    in[i] = from_int<T>(2 * rank + 4 * v);
    want[i] = from_int<T>(world - 1 + 4 * v);
  }
  transport.allreduce(host_span<const T>(in), host_span<T>(out), reduce_op::average);
  CHECK(mpi_test::first_difference(out, want) == -1);
}

TEST_CASE_TEMPLATE("reduce_scatter gives each rank its reduced block, in and out of place", T, TERSE_REDUCIBLE_TYPES)
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const int world = transport.size();
  for (const std::size_t m : sizes) {
    CAPTURE(m);
    const std::size_t total = m * static_cast<std::size_t>(world);
    std::vector<T> in(total), out(m), want(m);
    for (std::size_t j = 0; j < static_cast<std::size_t>(world); ++j) {
      for (std::size_t i = 0; i < m; ++i) {
        in[j * m + i] = from_int<T>(rank + static_cast<int>(j) + static_cast<int>(i % 3));
      }
    }
    for (std::size_t i = 0; i < m; ++i) {
      want[i] = from_int<T>(world * (world - 1) / 2 + world * (rank + static_cast<int>(i % 3)));
    }
    transport.reduce_scatter(host_span<const T>(in), host_span<T>(out), reduce_op::sum);
    CHECK(mpi_test::first_difference(out, want) == -1);

    // In place: the output is this rank's own block of the input.
    host_span<T> own = host_span<T>(in).subspan(static_cast<std::size_t>(rank) * m, m);
    transport.reduce_scatter(host_span<const T>(in), own, reduce_op::sum);
    CHECK(mpi_test::first_difference(std::vector<T>(own.begin(), own.end()), want) == -1);
  }
}

TEST_CASE_TEMPLATE("allgather places rank r's block at r, and in may be this rank's block", T, TERSE_ALL_TYPES)
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const auto world = static_cast<std::size_t>(transport.size());
  for (const std::size_t m : sizes) {
    CAPTURE(m);
    std::vector<T> in(m), out(world * m), want(world * m);
    for (std::size_t i = 0; i < m; ++i) {
      in[i] = from_int<T>(rank * 10 + static_cast<int>(i % 10));
    }
    for (std::size_t r = 0; r < world; ++r) {
      for (std::size_t i = 0; i < m; ++i) {
        want[r * m + i] = from_int<T>(static_cast<int>(r) * 10 + static_cast<int>(i % 10));
      }
    }
    transport.allgather(host_span<const T>(in), host_span<T>(out));
    CHECK(mpi_test::same_bits(out, want));

    std::vector<T> in_place(world * m);
    std::copy(in.begin(), in.end(), in_place.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(rank) * m));
    host_span<T> all(in_place);
    transport.allgather(host_span<const T>(all.subspan(static_cast<std::size_t>(rank) * m, m)), all);
    CHECK(mpi_test::same_bits(in_place, want));
  }
}

TEST_CASE_TEMPLATE("allgatherv handles uneven counts, zeros included", T, TERSE_ALL_TYPES)
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const auto world = static_cast<std::size_t>(transport.size());
  const std::vector<std::vector<std::size_t>> patterns = {
      [&] {
        std::vector<std::size_t> c(world);
        for (std::size_t r = 0; r < world; ++r) {
          c[r] = (r * 3) % 5;  // 0, 3, 1, 4, ...: a zero and uneven blocks
        }
        return c;
      }(),
      std::vector<std::size_t>(world, 0),
      [&] {
        std::vector<std::size_t> c(world, 0);
        c[world - 1] = 9;  // one rank holds everything
        return c;
      }(),
  };
  for (const auto& counts : patterns) {
    std::size_t total = 0, offset = 0;
    for (std::size_t r = 0; r < world; ++r) {
      offset = r == static_cast<std::size_t>(rank) ? total : offset;
      total += counts[r];
    }
    const std::size_t own = counts[static_cast<std::size_t>(rank)];
    std::vector<T> in(own), out(total), want(total);
    for (std::size_t i = 0; i < own; ++i) {
      in[i] = from_int<T>(rank * 20 + static_cast<int>(i));
    }
    for (std::size_t r = 0, at = 0; r < world; ++r) {
      for (std::size_t i = 0; i < counts[r]; ++i) {
        want[at++] = from_int<T>(static_cast<int>(r) * 20 + static_cast<int>(i));
      }
    }
    transport.allgatherv(host_span<const T>(in), host_span<T>(out), host_span<const std::size_t>(counts));
    CHECK(mpi_test::same_bits(out, want));

    std::vector<T> in_place(total);
    std::copy(in.begin(), in.end(), in_place.begin() + static_cast<std::ptrdiff_t>(offset));
    host_span<T> all(in_place);
    transport.allgatherv(host_span<const T>(all.subspan(offset, own)), all, host_span<const std::size_t>(counts));
    CHECK(mpi_test::same_bits(in_place, want));
  }
}

TEST_CASE_TEMPLATE("broadcast copies the root's buffer to every rank, from every root", T, TERSE_ALL_TYPES)
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  for (int root = 0; root < transport.size(); ++root) {
    for (const std::size_t n : sizes) {
      CAPTURE(root);
      CAPTURE(n);
      std::vector<T> buffer(n, from_int<T>(0)), want(n);
      for (std::size_t i = 0; i < n; ++i) {
        want[i] = from_int<T>(root * 7 + static_cast<int>(i % 9) + 1);
      }
      if (transport.rank() == root) {
        buffer = want;
      }
      transport.broadcast(host_span<T>(buffer), root);
      CHECK(mpi_test::same_bits(buffer, want));
    }
  }
}

TEST_CASE("barrier: no rank leaves before every rank has entered")
{
  terse::mpi_transport checked(MPI_COMM_WORLD, mpi_test::patient(true));
  terse::mpi_transport unchecked(MPI_COMM_WORLD, mpi_test::patient(false));
  for (terse::mpi_transport* transport : {&checked, &unchecked}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(15 * transport->rank()));
    const auto entered = mpi_test::clock::now().time_since_epoch().count();
    transport->barrier();
    const auto left = mpi_test::clock::now().time_since_epoch().count();
    // steady_clock is CLOCK_MONOTONIC, shared by processes on one host.
    long long last_entry = 0, first_exit = 0;
    const long long mine_in = entered, mine_out = left;
    MPI_Allreduce(&mine_in, &last_entry, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&mine_out, &first_exit, 1, MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    CHECK(first_exit >= last_entry);
  }
}

TEST_CASE("a transport on a split communicator reduces within its own group")
{
  const int rank = mpi_test::world_rank();
  MPI_Comm half = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
  {
    terse::mpi_transport transport(half, mpi_test::patient());
    int members = 0;
    MPI_Comm_size(half, &members);
    CHECK(transport.size() == members);
    std::vector<std::int64_t> value{rank};
    transport.allreduce(host_span<std::int64_t>(value), reduce_op::sum);
    std::int64_t want = 0;
    for (int r = rank % 2; r < mpi_test::world_size(); r += 2) {
      want += r;
    }
    CHECK(value[0] == want);
  }
  MPI_Comm_free(&half);
}

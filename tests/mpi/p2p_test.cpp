// Point-to-point verbs: rings over every type, ordering, large messages,
// zero-length messages, and size or type mismatches that raise on the
// receiver without breaking the pair.
#include "mpi_test_support.hpp"

using mpi_test::from_int;
using terse::host_span;

#define TERSE_ALL_TYPES                                                                                            \
  float, double, terse::fp16, terse::bf16, std::int32_t, std::int64_t, std::uint32_t, std::uint64_t, std::uint8_t, \
      std::byte

TEST_CASE_TEMPLATE("send and recv move every type around a ring", T, TERSE_ALL_TYPES)
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const int world = transport.size();
  const int next = (rank + 1) % world;
  const int previous = (rank + world - 1) % world;
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{17}}) {
    std::vector<T> out(n), in(n, from_int<T>(0)), want(n);
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = from_int<T>(rank * 16 + static_cast<int>(i % 16));
      want[i] = from_int<T>(previous * 16 + static_cast<int>(i % 16));
    }
    // Even ranks send first, odd ranks receive first: no cycle of waiting sends.
    if (rank % 2 == 0) {
      transport.send(host_span<const T>(out), next, 11);
      transport.recv(host_span<T>(in), previous, 11);
    } else {
      transport.recv(host_span<T>(in), previous, 11);
      transport.send(host_span<const T>(out), next, 11);
    }
    CHECK(mpi_test::same_bits(in, want));
  }
}

TEST_CASE("sendrecv exchanges large messages around a ring in both modes")
{
  for (const bool checked : {true, false}) {
    CAPTURE(checked);
    terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(checked));
    const int rank = transport.rank();
    const int world = transport.size();
    const std::size_t n = std::size_t{1} << 19;  // 2 MiB: beyond any eager limit
    std::vector<float> out(n, static_cast<float>(rank) + 0.25f), in(n, -1.0f);
    transport.sendrecv(host_span<const float>(out), (rank + 1) % world, host_span<float>(in),
                       (rank + world - 1) % world, 0);
    CHECK(in == std::vector<float>(n, static_cast<float>((rank + world - 1) % world) + 0.25f));
  }
}

TEST_CASE("messages of one peer and tag arrive in order, and tags keep messages apart")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  if (transport.rank() == 0) {
    for (int k = 1; k <= 3; ++k) {
      std::vector<std::int64_t> message(4, k);
      transport.send(host_span<const std::int64_t>(message), 1, 5);
    }
    std::vector<std::int64_t> other(2, 99);
    transport.send(host_span<const std::int64_t>(other), 1, 6);
  } else if (transport.rank() == 1) {
    std::vector<std::int64_t> other(2);
    for (int k = 1; k <= 3; ++k) {
      std::vector<std::int64_t> message(4);
      transport.recv(host_span<std::int64_t>(message), 0, 5);
      CHECK(message == std::vector<std::int64_t>(4, k));
    }
    transport.recv(host_span<std::int64_t>(other), 0, 6);
    CHECK(other == std::vector<std::int64_t>(2, 99));
  }
  CHECK(transport.healthy());
}

TEST_CASE("a size or type mismatch raises mismatch on the receiver only, and the next message is clean")
{
  for (const bool checked : {true, false}) {
    for (const std::size_t chunk : {terse::mpi_transport::default_max_chunk_elements, std::size_t{7}}) {
      CAPTURE(checked);
      CAPTURE(chunk);
      terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(checked));
      transport.set_max_chunk_elements(chunk);
      // Unchecked mode catches size mismatches exactly while both sides send
      // the same number of messages: within one chunk, or within the last.
      const std::size_t short_size = chunk == 7 ? 19 : 5;
      const std::size_t long_size = chunk == 7 ? 20 : 6;
      if (transport.rank() == 0) {
        std::vector<float> wrong(short_size, 1.0f);
        CHECK(mpi_test::outcome([&] { transport.send(host_span<const float>(wrong), 1, 2); }) == "no error");
        if (checked) {
          std::vector<std::int32_t> wrong_type(long_size, 7);
          CHECK(mpi_test::outcome([&] { transport.send(host_span<const std::int32_t>(wrong_type), 1, 2); }) ==
                "no error");
        }
        std::vector<float> right(long_size, 2.0f);
        transport.send(host_span<const float>(right), 1, 2);
      } else if (transport.rank() == 1) {
        std::vector<float> in(long_size, 0.0f);
        CHECK(mpi_test::outcome([&] { transport.recv(host_span<float>(in), 0, 2); }) ==
              mpi_test::name(terse::errc::mismatch));
        if (checked) {
          CHECK(mpi_test::outcome([&] { transport.recv(host_span<float>(in), 0, 2); }) ==
                mpi_test::name(terse::errc::mismatch));
        }
        CHECK(mpi_test::outcome([&] { transport.recv(host_span<float>(in), 0, 2); }) == "no error");
        CHECK(in == std::vector<float>(long_size, 2.0f));
      }
      CHECK(transport.healthy());
    }
  }
}

TEST_CASE("checked mode catches a longer send whose extra chunk the receiver would never expect")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(true));
  transport.set_max_chunk_elements(7);
  if (transport.rank() == 0) {
    std::vector<std::uint32_t> longer(28, 1);  // four messages
    transport.send(host_span<const std::uint32_t>(longer), 1, 0);
    std::vector<std::uint32_t> right(21, 2);
    transport.send(host_span<const std::uint32_t>(right), 1, 0);
  } else if (transport.rank() == 1) {
    std::vector<std::uint32_t> in(21, 0);  // three messages
    CHECK(mpi_test::outcome([&] { transport.recv(host_span<std::uint32_t>(in), 0, 0); }) ==
          mpi_test::name(terse::errc::mismatch));
    transport.recv(host_span<std::uint32_t>(in), 0, 0);
    CHECK(in == std::vector<std::uint32_t>(21, 2));
  }
  CHECK(transport.healthy());
}

TEST_CASE("bad peers and tags are invalid_argument before anything is sent")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  std::vector<float> buffer(3);
  const int world = transport.size();
  const std::string invalid = mpi_test::name(terse::errc::invalid_argument);
  CHECK(mpi_test::outcome([&] { transport.send(host_span<const float>(buffer), world, 0); }) == invalid);
  CHECK(mpi_test::outcome([&] { transport.send(host_span<const float>(buffer), -1, 0); }) == invalid);
  CHECK(mpi_test::outcome([&] { transport.recv(host_span<float>(buffer), 0, -1); }) == invalid);
  std::vector<float> overlapping(6);
  host_span<float> both(overlapping);
  CHECK(mpi_test::outcome([&] {
          transport.sendrecv(host_span<const float>(both.first(4)), 0, both.subspan(2, 4), 0, 0);
        }) == invalid);
  CHECK(transport.healthy());
}

// nccl_transport with one rank: every verb on real NCCL kernels, in checked
// and unchecked mode. With one rank each verb returns the rank's own data,
// so the expected values are exact for every element type.
#include <terse/core/concepts.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/transport/nccl.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "device_vector.hpp"
#include "nccl_test_support.hpp"

using terse_test::device_vector;
using terse_test::error_of;
using terse_test::sample;

static_assert(terse::concepts::collective_transport<terse::nccl_transport, terse::memory_space::device>);
static_assert(terse::concepts::point_to_point_transport<terse::nccl_transport, terse::memory_space::device>);
static_assert(terse::concepts::transport<terse::nccl_transport>);

TEST_CASE_TEMPLATE("nccl single rank collectives return the rank's own data", T, float, terse::fp16, terse::bf16)
{
  terse::cuda_stream stream;
  const std::size_t n = 1000;
  const std::vector<T> values = sample<T>(n);
  for (const bool checked : {false, true}) {
    CAPTURE(checked);
    auto t = terse_test::single_rank(stream.get(), checked);
    REQUIRE(t.rank() == 0);
    REQUIRE(t.size() == 1);
    REQUIRE(t.healthy());
    device_vector<T> in(values);
    device_vector<T> out(n);

    for (const auto op :
         {terse::reduce_op::sum, terse::reduce_op::average, terse::reduce_op::max, terse::reduce_op::min}) {
      out.upload(std::vector<T>(n));
      t.allreduce(in.span(), out.span(), op);
      t.synchronize();
      CHECK(out.download() == values);
    }

    device_vector<T> buffer(values);
    t.allreduce(buffer.span(), terse::reduce_op::sum);
    t.synchronize();
    CHECK(buffer.download() == values);

    out.upload(std::vector<T>(n));
    t.reduce_scatter(in.span(), out.span(), terse::reduce_op::sum);
    t.synchronize();
    CHECK(out.download() == values);

    out.upload(std::vector<T>(n));
    t.allgather(in.span(), out.span());
    t.synchronize();
    CHECK(out.download() == values);
    t.allgather(buffer.span(), buffer.span());  // in is this rank's block of out
    t.synchronize();
    CHECK(buffer.download() == values);

    const std::vector<std::size_t> counts{n};
    out.upload(std::vector<T>(n));
    t.allgatherv(in.span(), out.span(), counts);
    t.synchronize();
    CHECK(out.download() == values);

    t.broadcast(buffer.span(), 0);
    t.synchronize();
    CHECK(buffer.download() == values);

    out.upload(std::vector<T>(n));
    t.sendrecv(in.span(), 0, out.span(), 0, 3);
    t.synchronize();
    CHECK(out.download() == values);

    t.barrier();
    CHECK(t.healthy());
  }
}

TEST_CASE_TEMPLATE("nccl single rank moves every element type", T, double, std::int32_t, std::int64_t, std::uint32_t,
                   std::uint64_t, std::uint8_t, std::byte)
{
  terse::cuda_stream stream;
  auto t = terse_test::single_rank(stream.get(), true);
  const std::vector<T> values = sample<T>(257);
  device_vector<T> in(values);
  device_vector<T> out(values.size());
  if constexpr (terse::reducible<T>) {
    t.allreduce(in.span(), out.span(), terse::reduce_op::sum);
  } else {
    t.allgather(in.span(), out.span());
  }
  t.synchronize();
  CHECK(out.download() == values);
}

TEST_CASE("nccl rejects bad arguments on the calling rank and stays healthy")
{
  terse::cuda_stream stream;
  for (const bool checked : {false, true}) {
    CAPTURE(checked);
    auto t = terse_test::single_rank(stream.get(), checked);
    device_vector<float> a(sample<float>(64));
    device_vector<float> b(65);
    device_vector<std::int32_t> ints(sample<std::int32_t>(64));
    const auto invalid = terse::errc::invalid_argument;

    CHECK(error_of([&] { t.allreduce(a.span(), b.span(), terse::reduce_op::sum); }) == invalid);
    CHECK(error_of([&] { t.allreduce(a.span().subspan(1, 32), a.span().first(32), terse::reduce_op::sum); }) ==
          invalid);
    CHECK(error_of([&] { t.allreduce(ints.span(), terse::reduce_op::average); }) == invalid);
    CHECK(error_of([&] { t.reduce_scatter(a.span(), b.span().first(63), terse::reduce_op::sum); }) == invalid);
    CHECK(error_of([&] { t.allgather(a.span(), b.span()); }) == invalid);
    const std::vector<std::size_t> two_counts{32, 32};
    CHECK(error_of([&] { t.allgatherv(a.span(), b.span().first(64), two_counts); }) == invalid);
    CHECK(error_of([&] { t.broadcast(a.span(), 1); }) == invalid);
    CHECK(error_of([&] { t.send(a.span(), 0, 0); }) == invalid);  // to oneself, alone
    CHECK(error_of([&] { t.recv(a.span(), 3, 0); }) == invalid);  // no such rank
    CHECK(error_of([&] { t.sendrecv(a.span(), 0, b.span(), 0, -1); }) == invalid);
    CHECK(t.healthy());

    t.allreduce(a.span(), b.span().first(64), terse::reduce_op::max);
    t.synchronize();
    const auto got = b.download();
    CHECK(std::vector<float>(got.begin(), got.begin() + 64) == sample<float>(64));
  }
}

TEST_CASE("nccl counts are 64-bit")
{
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  TERSE_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
  const std::size_t n = (std::size_t{1} << 31) + 7;  // more elements than an int can count
  if (free_bytes < n + (std::size_t{1} << 30)) {
    MESSAGE("needs 3 GiB of free device memory; not checked here");
    return;
  }
  terse::cuda_stream stream;
  auto t = terse_test::single_rank(stream.get(), true);
  terse::device_buffer<std::uint8_t> buffer(n);
  TERSE_CUDA_TRY(cudaMemsetAsync(buffer.data(), 0, n, stream.get()));
  TERSE_CUDA_TRY(cudaMemsetAsync(buffer.data() + n - 3, 5, 3, stream.get()));
  t.allreduce(buffer.span(n), terse::reduce_op::sum);
  t.synchronize();
  std::uint8_t tail[4] = {};
  TERSE_CUDA_TRY(cudaMemcpy(tail, buffer.data() + n - 4, 4, cudaMemcpyDeviceToHost));
  CHECK(tail[0] == 0);
  CHECK(tail[1] == 5);
  CHECK(tail[3] == 5);
}

TEST_CASE("nccl transport moves and a moved-from one refuses work")
{
  terse::cuda_stream stream;
  auto t = terse_test::single_rank(stream.get(), false);
  terse::nccl_transport moved = std::move(t);
  CHECK(moved.healthy());
  CHECK_FALSE(t.healthy());  // NOLINT(bugprone-use-after-move): that is the point
  device_vector<float> a(sample<float>(8));
  CHECK(error_of([&] { t.allreduce(a.span(), terse::reduce_op::sum); }) == terse::errc::peer_failed);
  moved.allreduce(a.span(), terse::reduce_op::sum);
  moved.synchronize();
  CHECK(a.download() == sample<float>(8));
}

TEST_CASE("nccl wraps a communicator it does not own and leaves it alive")
{
  terse::cuda_stream stream;
  ncclUniqueId id;
  TERSE_NCCL_TRY(ncclGetUniqueId(&id));
  ncclComm_t comm = nullptr;
  TERSE_NCCL_TRY(ncclCommInitRank(&comm, 1, id, 0));
  {
    terse::nccl_transport t(comm, stream.get(), {.checked = true});
    CHECK(t.comm() == comm);
    device_vector<float> a(sample<float>(16));
    t.allreduce(a.span(), terse::reduce_op::sum);
    t.set_stream(stream.get());
    t.barrier();
    CHECK(a.download() == sample<float>(16));
  }
  CHECK(ncclCommDestroy(comm) == ncclSuccess);
}

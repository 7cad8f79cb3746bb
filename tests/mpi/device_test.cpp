// Device spans through the MPI transport: staged via pinned host memory.
// Compiled against terse::cuda so CI proves the staging path builds; its main
// (mpi_main.cpp with TERSE_MPI_TESTS_NEED_A_DEVICE) skips the run (exit 77)
// unless every rank sees a CUDA device.
#include <terse/core/concepts.hpp>
#include <terse/core/cuda_memory.hpp>

#include <cuda_runtime_api.h>

#include "mpi_test_support.hpp"

using terse::device_span;
using terse::reduce_op;

static_assert(terse::concepts::collective_transport<terse::mpi_transport, terse::memory_space::device>);
static_assert(terse::concepts::point_to_point_transport<terse::mpi_transport, terse::memory_space::device>);

namespace {

template <class T>
void upload(const terse::device_buffer<T>& device, const std::vector<T>& host)
{
  REQUIRE(cudaMemcpy(device.data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
}

template <class T>
std::vector<T> download(const terse::device_buffer<T>& device, std::size_t n)
{
  std::vector<T> host(n);
  REQUIRE(cudaMemcpy(host.data(), device.data(), n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
  return host;
}

}  // namespace

TEST_CASE_TEMPLATE("device spans give the same bits as host spans, for every verb", T, float, terse::bf16, std::int32_t)
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const int world = transport.size();
  const auto w = static_cast<std::size_t>(world);
  transport.set_max_chunk_elements(7);  // staging must also survive chunking
  const std::size_t n = 103;
  std::vector<T> in(n);
  for (std::size_t i = 0; i < n; ++i) {
    in[i] = mpi_test::from_int<T>(rank + static_cast<int>(i % 5));
  }

  // allreduce: device result == host result.
  std::vector<T> host_out(n);
  transport.allreduce(terse::host_span<const T>(in), terse::host_span<T>(host_out), reduce_op::sum);
  terse::device_buffer<T> d_in(n), d_out(n);
  upload(d_in, in);
  transport.allreduce(device_span<const T>(d_in.data(), n), d_out.span(n), reduce_op::sum);
  CHECK(mpi_test::same_bits(download(d_out, n), host_out));

  // reduce_scatter of the same buffer viewed as W blocks of m.
  const std::size_t m = n / w;
  std::vector<T> host_block(m);
  transport.reduce_scatter(terse::host_span<const T>(in.data(), m * w), terse::host_span<T>(host_block),
                           reduce_op::sum);
  terse::device_buffer<T> d_block(m);
  transport.reduce_scatter(device_span<const T>(d_in.data(), m * w), d_block.span(m), reduce_op::sum);
  CHECK(mpi_test::same_bits(download(d_block, m), host_block));

  // allgather, allgatherv, broadcast, sendrecv.
  terse::device_buffer<T> d_all(n * w);
  transport.allgather(device_span<const T>(d_in.data(), n), d_all.span(n * w));
  std::vector<T> host_all(n * w);
  transport.allgather(terse::host_span<const T>(in), terse::host_span<T>(host_all));
  CHECK(mpi_test::same_bits(download(d_all, n * w), host_all));

  std::vector<std::size_t> counts(w);
  std::size_t total = 0;
  for (std::size_t r = 0; r < w; ++r) {
    counts[r] = (r * 3) % 5;
    total += counts[r];
  }
  const std::size_t own = counts[static_cast<std::size_t>(rank)];
  transport.allgatherv(device_span<const T>(d_in.data(), own), d_all.span(total),
                       terse::host_span<const std::size_t>(counts));
  std::vector<T> host_v(total);
  transport.allgatherv(terse::host_span<const T>(in.data(), own), terse::host_span<T>(host_v),
                       terse::host_span<const std::size_t>(counts));
  CHECK(mpi_test::same_bits(download(d_all, total), host_v));

  upload(d_out, in);
  transport.broadcast(d_out.span(n), world - 1);
  std::vector<T> host_b = in;
  transport.broadcast(terse::host_span<T>(host_b), world - 1);
  CHECK(mpi_test::same_bits(download(d_out, n), host_b));

  transport.sendrecv(device_span<const T>(d_in.data(), n), (rank + 1) % world, d_out.span(n),
                     (rank + world - 1) % world, 4);
  std::vector<T> host_r(n);
  transport.sendrecv(terse::host_span<const T>(in), (rank + 1) % world, terse::host_span<T>(host_r),
                     (rank + world - 1) % world, 4);
  CHECK(mpi_test::same_bits(download(d_out, n), host_r));
  CHECK(transport.healthy());
}

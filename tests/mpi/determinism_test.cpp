// Determinism: reductions of random data equal a serial reference that folds
// the ranks in order 0..W-1 in the accumulator type and rounds once, bit for
// bit, on every rank, whatever the chunk size.
#include "mpi_test_support.hpp"

using mpi_test::random_value;
using terse::host_span;
using terse::reduce_op;

namespace {

template <class T>
T from_float(float v)
{
  return static_cast<T>(v);
}

// What every rank should get: fold rank 0, 1, ..., W-1 in order.
template <class T>
std::vector<T> serial_reference(const std::vector<std::vector<T>>& inputs, reduce_op op)
{
  using A = terse::accumulator_t<T>;
  const std::size_t n = inputs[0].size();
  std::vector<T> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    A acc = static_cast<A>(inputs[0][i]);
    for (std::size_t r = 1; r < inputs.size(); ++r) {
      const A x = static_cast<A>(inputs[r][i]);
      switch (op) {
        case reduce_op::sum:
        case reduce_op::average: acc = acc + x; break;
        case reduce_op::max: acc = x > acc ? x : acc; break;
        case reduce_op::min: acc = x < acc ? x : acc; break;
      }
    }
    if (op == reduce_op::average) {
      acc = acc / static_cast<A>(inputs.size());
    }
    out[i] = static_cast<T>(acc);
  }
  return out;
}

template <class T>
std::vector<std::vector<T>> random_inputs(int world, std::size_t n, std::uint64_t seed)
{
  std::vector<std::vector<T>> inputs(static_cast<std::size_t>(world), std::vector<T>(n));
  for (int r = 0; r < world; ++r) {
    for (std::size_t i = 0; i < n; ++i) {
      inputs[static_cast<std::size_t>(r)][i] = from_float<T>(random_value(r, i, seed));
    }
  }
  return inputs;
}

}  // namespace

TEST_CASE_TEMPLATE("allreduce of random data matches the serial rank-order reference bit for bit on every rank", T,
                   float, double, terse::fp16, terse::bf16)
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const std::size_t n = 1003;  // not a multiple of the world size
  const auto inputs = random_inputs<T>(transport.size(), n, 2024);
  for (const reduce_op op : {reduce_op::sum, reduce_op::average, reduce_op::max, reduce_op::min}) {
    CAPTURE(terse::to_string(op));
    const std::vector<T> want = serial_reference(inputs, op);
    std::vector<T> out(n);
    transport.allreduce(host_span<const T>(inputs[static_cast<std::size_t>(rank)]), host_span<T>(out), op);
    CHECK(mpi_test::same_bits(out, want));
    CHECK(mpi_test::same_on_all_ranks(out));

    // Chunk boundaries must not change a single bit.
    transport.set_max_chunk_elements(7);
    std::vector<T> chunked = inputs[static_cast<std::size_t>(rank)];
    transport.allreduce(host_span<T>(chunked), op);
    transport.set_max_chunk_elements(terse::mpi_transport::default_max_chunk_elements);
    CHECK(mpi_test::same_bits(chunked, want));
  }
}

TEST_CASE("the rank order matters for floats, so the reference is a real check")
{
  // Guard against a test that would pass for any summation order: with these
  // inputs the pairwise or reversed order rounds differently somewhere.
  const std::size_t n = 1003;
  const auto inputs = random_inputs<float>(4, n, 2024);
  const std::vector<float> forward = serial_reference(inputs, reduce_op::sum);
  bool order_matters = false;
  for (std::size_t i = 0; i < n && !order_matters; ++i) {
    const float backward = ((inputs[3][i] + inputs[2][i]) + inputs[1][i]) + inputs[0][i];
    order_matters = backward != forward[i];
  }
  CHECK(order_matters);
}

TEST_CASE_TEMPLATE("reduce_scatter of random data matches the serial reference of each block", T, float, terse::fp16,
                   terse::bf16)
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const int world = transport.size();
  const std::size_t m = 77;
  const auto inputs = random_inputs<T>(world, m * static_cast<std::size_t>(world), 7);
  const std::vector<T> full = serial_reference(inputs, reduce_op::sum);
  const std::vector<T> want(full.begin() + static_cast<std::ptrdiff_t>(m) * rank,
                            full.begin() + static_cast<std::ptrdiff_t>(m) * (rank + 1));
  std::vector<T> out(m);
  transport.set_max_chunk_elements(5);
  transport.reduce_scatter(host_span<const T>(inputs[static_cast<std::size_t>(rank)]), host_span<T>(out),
                           reduce_op::sum);
  CHECK(mpi_test::same_bits(out, want));
}

TEST_CASE("a small max_chunk_elements splits every verb's messages without changing results")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient());
  const int rank = transport.rank();
  const int world = transport.size();
  const auto w = static_cast<std::size_t>(world);
  CHECK(transport.max_chunk_elements() == terse::mpi_transport::default_max_chunk_elements);
  CHECK(mpi_test::outcome([&] { transport.set_max_chunk_elements(0); }) ==
        mpi_test::name(terse::errc::invalid_argument));
  transport.set_max_chunk_elements(7);
  CHECK(transport.max_chunk_elements() == 7);

  // allreduce, n = 103: blocks of 26/26/26/25 elements, four messages each.
  std::vector<std::int32_t> values(103);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = rank * 1000 + static_cast<std::int32_t>(i);
  }
  transport.allreduce(host_span<std::int32_t>(values), reduce_op::sum);
  bool sums_ok = true;
  for (std::size_t i = 0; i < values.size(); ++i) {
    sums_ok = sums_ok && values[i] == 1000 * world * (world - 1) / 2 + world * static_cast<std::int32_t>(i);
  }
  CHECK(sums_ok);

  // allgather of 11 per rank, allgatherv of uneven counts.
  std::vector<double> mine(11), gathered(11 * w);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    mine[i] = rank + 0.5 * static_cast<double>(i);
  }
  transport.allgather(host_span<const double>(mine), host_span<double>(gathered));
  bool gathered_ok = true;
  for (std::size_t r = 0; r < w; ++r) {
    for (std::size_t i = 0; i < 11; ++i) {
      gathered_ok = gathered_ok && gathered[r * 11 + i] == static_cast<double>(r) + 0.5 * static_cast<double>(i);
    }
  }
  CHECK(gathered_ok);

  std::vector<std::size_t> counts(w);
  for (std::size_t r = 0; r < w; ++r) {
    counts[r] = (r * 9 + 6) % 16;  // 6, 15, 8, 1, ...
  }
  std::size_t total = 0;
  for (const std::size_t c : counts) {
    total += c;
  }
  std::vector<std::uint8_t> own(counts[static_cast<std::size_t>(rank)], static_cast<std::uint8_t>(rank + 1));
  std::vector<std::uint8_t> all(total);
  transport.allgatherv(host_span<const std::uint8_t>(own), host_span<std::uint8_t>(all),
                       host_span<const std::size_t>(counts));
  bool gatherv_ok = true;
  for (std::size_t r = 0, at = 0; r < w; ++r) {
    for (std::size_t i = 0; i < counts[r]; ++i) {
      gatherv_ok = gatherv_ok && all[at++] == static_cast<std::uint8_t>(r + 1);
    }
  }
  CHECK(gatherv_ok);

  // broadcast of 50 from rank 1 (or 0 alone).
  const int root = world > 1 ? 1 : 0;
  std::vector<std::uint64_t> block(50, 0);
  if (rank == root) {
    for (std::size_t i = 0; i < block.size(); ++i) {
      block[i] = 3 * i + 1;
    }
  }
  transport.broadcast(host_span<std::uint64_t>(block), root);
  bool broadcast_ok = true;
  for (std::size_t i = 0; i < block.size(); ++i) {
    broadcast_ok = broadcast_ok && block[i] == 3 * i + 1;
  }
  CHECK(broadcast_ok);

  // sendrecv ring of 30 (five messages) and of 0 (one empty message).
  for (const std::size_t n : {std::size_t{30}, std::size_t{0}}) {
    std::vector<float> out(n, static_cast<float>(rank)), in(n, -1.0f);
    transport.sendrecv(host_span<const float>(out), (rank + 1) % world, host_span<float>(in),
                       (rank + world - 1) % world, 3);
    CHECK(in == std::vector<float>(n, static_cast<float>((rank + world - 1) % world)));
  }
  CHECK(transport.healthy());
}

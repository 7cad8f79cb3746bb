// Hot paths never allocate: once a transport's scratch has grown to a call's
// size, repeating the call (any verb, checked mode, chunked or not) makes no
// heap allocation. Counted by replacing the global operator new in this test
// binary; only calls made while a counter is armed are counted.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/residual.hpp>

#include <array>
#include <atomic>
#include <cstdlib>
#include <new>

#include "mpi_test_support.hpp"

// g++ may inline the frees below into library code after a call to the
// replaced new and call them mismatched; the pair is consistent.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};

void* counted_allocation(std::size_t bytes)
{
  if (counting.load(std::memory_order_relaxed)) {
    allocations.fetch_add(1, std::memory_order_relaxed);
  }
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) {
    return p;
  }
  throw std::bad_alloc();
}

// Arms the counter for the calls made inside `calls`.
template <class F>
long allocations_during(F&& calls)
{
  allocations = 0;
  counting = true;
  calls();
  counting = false;
  return allocations.load();
}
}  // namespace

void* operator new(std::size_t bytes)
{
  return counted_allocation(bytes);
}
void* operator new[](std::size_t bytes)
{
  return counted_allocation(bytes);
}
void operator delete(void* p) noexcept
{
  std::free(p);
}
void operator delete[](void* p) noexcept
{
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept
{
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept
{
  std::free(p);
}

TEST_CASE("repeated verbs of a size already seen do not allocate")
{
  using terse::host_span;
  using terse::reduce_op;
  for (const std::size_t chunk : {terse::mpi_transport::default_max_chunk_elements, std::size_t{7}}) {
    CAPTURE(chunk);
    terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(true));
    transport.set_max_chunk_elements(chunk);
    const int rank = transport.rank();
    const int world = transport.size();
    const auto w = static_cast<std::size_t>(world);
    std::vector<terse::bf16> grads(1001, terse::bf16(1.0f));
    std::vector<float> in(64 * w, 1.0f), block(64), gathered(64 * w);
    std::vector<std::size_t> counts(w, 3);
    std::vector<double> part(3, 1.0), parts(3 * w), ring(100, 2.0), ring_in(100);
    const auto every_verb = [&] {
      transport.allreduce(host_span<terse::bf16>(grads), reduce_op::average);
      transport.reduce_scatter(host_span<const float>(in), host_span<float>(block), reduce_op::sum);
      transport.allgather(host_span<const float>(block), host_span<float>(gathered));
      transport.allgatherv(host_span<const double>(part), host_span<double>(parts),
                           host_span<const std::size_t>(counts));
      transport.broadcast(host_span<float>(block), world - 1);
      transport.sendrecv(host_span<const double>(ring), (rank + 1) % world, host_span<double>(ring_in),
                         (rank + world - 1) % world, 1);
      transport.barrier();
    };
    // The first round grows scratch and request lists (and proves the
    // counter counts); later rounds of the same sizes must not allocate.
    CHECK(allocations_during(every_verb) > 0);
    const long allocated = allocations_during([&] {
      for (int repeat = 0; repeat < 3; ++repeat) {
        every_verb();
      }
    });
    CHECK(allocated == 0);
    CHECK(transport.healthy());
  }
}

TEST_CASE("repeated exchanges of a shape already seen do not allocate")
{
  using terse::host_span;
  for (const bool checked : {true, false}) {
    CAPTURE(checked);
    terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(checked));
    transport.set_max_chunk_elements(50);
    const int rank = transport.rank();
    const int world = transport.size();
    const auto w = static_cast<std::size_t>(world);
    std::vector<std::byte> out(120 * w, std::byte(1)), in(120 * w);
    std::vector<terse::outgoing<>> sends;
    std::vector<terse::incoming<>> recvs;
    for (int peer = 0; peer < world; ++peer) {
      const auto p = static_cast<std::size_t>(peer);
      sends.push_back({peer, host_span<const std::byte>(out).subspan(p * 120, 120)});
      recvs.push_back({peer, host_span<std::byte>(in).subspan(p * 120, 120)});
    }
    const std::array ring_send{terse::outgoing<>{(rank + 1) % world, host_span<const std::byte>(out).first(8)}};
    const std::array ring_recv{
        terse::incoming<>{(rank + world - 1) % world, host_span<std::byte>(in).subspan(in.size() - 8, 8)}};
    const auto two_in_flight = [&] {
      const terse::exchange_id all = transport.start_exchange(host_span<const terse::outgoing<>>(sends),
                                                              host_span<const terse::incoming<>>(recvs), 1);
      const terse::exchange_id ring = transport.start_exchange(host_span<const terse::outgoing<>>(ring_send),
                                                               host_span<const terse::incoming<>>(ring_recv), 2);
      transport.wait(ring);
      while (!transport.test(all)) {
      }
    };
    CHECK(allocations_during(two_in_flight) > 0);
    const long allocated = allocations_during([&] {
      for (int repeat = 0; repeat < 3; ++repeat) {
        two_in_flight();
      }
    });
    CHECK(allocated == 0);
    CHECK(transport.healthy());
  }
}

TEST_CASE("a warm allreduce step over MPI allocates nothing, on every path, started bucket by bucket")
{
  terse::mpi_transport transport(MPI_COMM_WORLD, mpi_test::patient(false));
  static const std::vector<std::size_t> sizes{3000, 10, 1537, 7, 4096, 900, 5};
  const terse::layout shape(sizes, 4600, /*dense_below=*/64);
  std::vector<float> g(shape.total());
  const auto step = [&](auto& sync, int number) {
    for (std::size_t i = 0; i < g.size(); ++i) {
      g[i] = 0.01f * static_cast<float>((i * 31 + static_cast<std::size_t>(transport.rank() * 7 + number)) % 23);
    }
    for (const terse::bucket& b : shape.buckets()) {
      sync.start(b.id, terse::host_span<float>(g).subspan(b.offset, b.count));
    }
    sync.wait_all();
  };
  const auto check = [&](auto sync) {
    for (int number = 0; number < 3; ++number) {
      step(sync, number);
    }
    CHECK(allocations_during([&] {
            for (int number = 3; number < 6; ++number) {
              step(sync, number);
            }
          }) == 0);
  };
  check(terse::allreduce(transport, shape));
  check(terse::allreduce(transport, shape, terse::compress::uniform<4>{}, terse::feedback::residual{}));
  check(terse::allreduce(transport, shape, terse::compress::topk{.density = 0.05f}, terse::feedback::residual{}));
  CHECK(transport.healthy());
}

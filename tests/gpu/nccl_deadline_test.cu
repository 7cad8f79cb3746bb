// nccl_transport never waits past its deadline: a kernel that holds the
// stream stands in for a peer that stopped answering.
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/transport/nccl.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "nccl_test_support.hpp"

namespace {

// Spins until the host sets *release or max_ns pass (so a test that goes
// wrong still ends).
__global__ void hold_stream(const volatile int* release, unsigned long long max_ns)
{
  unsigned long long start = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  for (;;) {
    if (*release != 0) {
      return;
    }
    unsigned long long now = 0;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    if (now - start > max_ns) {
      return;
    }
    __nanosleep(1000);
  }
}

// A stream held by a kernel until release() (or 10 s).
class held_stream {
 public:
  held_stream()
  {
    void* memory = nullptr;
    TERSE_CUDA_TRY(cudaHostAlloc(&memory, sizeof(int), cudaHostAllocMapped));
    flag_ = static_cast<volatile int*>(memory);
    *flag_ = 0;
    void* on_device = nullptr;
    TERSE_CUDA_TRY(cudaHostGetDevicePointer(&on_device, memory, 0));
    hold_stream<<<1, 1, 0, stream_.get()>>>(static_cast<const volatile int*>(on_device), 10'000'000'000ull);
    TERSE_CUDA_TRY(cudaGetLastError());
  }
  held_stream(const held_stream&) = delete;
  held_stream& operator=(const held_stream&) = delete;
  ~held_stream()
  {
    release();
    TERSE_CUDA_TRY_NOTHROW(cudaStreamSynchronize(stream_.get()));
    TERSE_CUDA_TRY_NOTHROW(cudaFreeHost(const_cast<int*>(flag_)));
  }

  cudaStream_t get() const noexcept { return stream_.get(); }
  void release() noexcept { *flag_ = 1; }

 private:
  terse::cuda_stream stream_;
  volatile int* flag_ = nullptr;
};

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start)
{
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

}  // namespace

TEST_CASE("nccl synchronize throws timeout at the deadline and breaks the transport")
{
  held_stream stream;
  auto t = terse_test::single_rank(stream.get(), false, std::chrono::milliseconds(300));
  const auto start = clock_type::now();
  CHECK(terse_test::error_of([&] { t.synchronize(); }) == terse::errc::timeout);
  const double waited = seconds_since(start);
  CHECK(waited >= 0.29);
  CHECK(waited < 3.0);
  CHECK_FALSE(t.healthy());
  CHECK(t.comm() == nullptr);  // an owned communicator is aborted

  // Broken: every verb refuses at once.
  terse::device_buffer<float> buffer(4);
  const auto again = clock_type::now();
  CHECK(terse_test::error_of([&] { t.allreduce(buffer.span(4), terse::reduce_op::sum); }) == terse::errc::peer_failed);
  CHECK(terse_test::error_of([&] { t.barrier(); }) == terse::errc::peer_failed);
  CHECK(terse_test::error_of([&] { t.synchronize(); }) == terse::errc::peer_failed);
  CHECK(seconds_since(again) < 0.1);
}

TEST_CASE("nccl checked mode waits for the fingerprint with the deadline")
{
  held_stream stream;
  auto t = terse_test::single_rank(stream.get(), true, std::chrono::milliseconds(300));
  // Let the kernel go a little after the deadline, so however NCCL's abort
  // treats work queued behind it, the stream drains.
  std::jthread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stream.release();
  });
  terse::device_buffer<float> buffer(4);
  const auto start = clock_type::now();
  CHECK(terse_test::error_of([&] { t.allreduce(buffer.span(4), terse::reduce_op::sum); }) == terse::errc::timeout);
  CHECK(seconds_since(start) >= 0.29);
  CHECK_FALSE(t.healthy());
}

TEST_CASE("nccl leaves a communicator it does not own to its owner after a timeout")
{
  held_stream stream;
  ncclUniqueId id;
  TERSE_NCCL_TRY(ncclGetUniqueId(&id));
  ncclComm_t comm = nullptr;
  TERSE_NCCL_TRY(ncclCommInitRank(&comm, 1, id, 0));
  {
    terse::nccl_transport t(comm, stream.get(), {.timeout = std::chrono::milliseconds(200), .checked = false});
    CHECK(terse_test::error_of([&] { t.synchronize(); }) == terse::errc::timeout);
    CHECK_FALSE(t.healthy());
    CHECK(t.comm() == comm);
  }
  stream.release();
  TERSE_CUDA_TRY(cudaStreamSynchronize(stream.get()));
  CHECK(ncclCommAbort(comm) == ncclSuccess);
}

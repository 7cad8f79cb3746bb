// nccl_transport across GPUs: one thread per device, each a rank. Runs only
// where the machine has two or more GPUs (NCCL cannot put two ranks of one
// communicator on the same device).
#include <terse/core/cuda_memory.hpp>
#include <terse/transport/nccl.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "device_vector.hpp"
#include "nccl_test_support.hpp"

namespace {

// Runs body(transport) for every rank of a world of min(devices, 4) GPUs;
// returns false (and runs nothing) with fewer than two devices.
bool run_on_gpus(const std::function<void(terse::nccl_transport&)>& body, bool checked = true)
{
  const int world = std::min(terse::cuda_device_count(), 4);
  if (world < 2) {
    MESSAGE("needs two or more GPUs; not checked here");
    return false;
  }
  ncclUniqueId id;
  TERSE_NCCL_TRY(ncclGetUniqueId(&id));
  std::vector<std::exception_ptr> failures(static_cast<std::size_t>(world));
  {
    std::vector<std::jthread> ranks;
    for (int r = 0; r < world; ++r) {
      ranks.emplace_back([&, r] {
        try {
          TERSE_CUDA_TRY(cudaSetDevice(r));
          terse::cuda_stream stream;
          auto t = terse::nccl_transport::create(r, world, id, stream.get(),
                                                 {.timeout = std::chrono::seconds(60), .checked = checked});
          body(t);
          t.synchronize();
        } catch (...) {
          failures[static_cast<std::size_t>(r)] = std::current_exception();
        }
      });
    }
  }
  for (const auto& failure : failures) {
    if (failure) {
      std::rethrow_exception(failure);
    }
  }
  return true;
}

}  // namespace

TEST_CASE("nccl ranks on several GPUs sum, gather and pass a ring")
{
  run_on_gpus([](terse::nccl_transport& t) {
    const int w = t.size();
    const std::size_t n = 1003;
    terse_test::device_vector<float> mine(std::vector<float>(n, static_cast<float>(t.rank() + 1)));
    terse_test::device_vector<float> sum(n);
    t.allreduce(mine.span(), sum.span(), terse::reduce_op::sum);
    t.synchronize();
    const float expected = static_cast<float>(w * (w + 1) / 2);
    CHECK(sum.download() == std::vector<float>(n, expected));

    std::vector<std::size_t> counts(static_cast<std::size_t>(w));
    for (int r = 0; r < w; ++r) {
      counts[static_cast<std::size_t>(r)] = static_cast<std::size_t>(r) * 3 + 1;
    }
    const std::size_t own = counts[static_cast<std::size_t>(t.rank())];
    terse_test::device_vector<float> part(std::vector<float>(own, static_cast<float>(t.rank())));
    std::size_t total = 0;
    for (const std::size_t c : counts) {
      total += c;
    }
    terse_test::device_vector<float> gathered(total);
    t.allgatherv(part.span(), gathered.span(), counts);
    t.synchronize();
    const auto all = gathered.download();
    std::size_t offset = 0;
    for (int r = 0; r < w; ++r) {
      for (std::size_t i = 0; i < counts[static_cast<std::size_t>(r)]; ++i) {
        CHECK(all[offset + i] == static_cast<float>(r));
      }
      offset += counts[static_cast<std::size_t>(r)];
    }

    terse_test::device_vector<float> from_left(n);
    t.sendrecv(mine.span(), (t.rank() + 1) % w, from_left.span(), (t.rank() + w - 1) % w, 0);
    t.synchronize();
    CHECK(from_left.download() == std::vector<float>(n, static_cast<float>((t.rank() + w - 1) % w + 1)));
  });
}

TEST_CASE("nccl checked mode makes every rank see a mismatch and the world stays healthy")
{
  run_on_gpus([](terse::nccl_transport& t) {
    terse_test::device_vector<float> buffer(16);
    // Rank 0 reduces 8 elements, the others 9: everyone throws mismatch.
    const std::size_t count = t.rank() == 0 ? 8 : 9;
    CHECK(terse_test::error_of([&] { t.allreduce(buffer.span().first(count), terse::reduce_op::sum); }) ==
          terse::errc::mismatch);
    // Rank 1's own arguments are wrong: it throws invalid_argument, the
    // others mismatch.
    const auto expected = t.rank() == 1 ? terse::errc::invalid_argument : terse::errc::mismatch;
    const int root = t.rank() == 1 ? t.size() : 0;
    CHECK(terse_test::error_of([&] { t.broadcast(buffer.span(), root); }) == expected);
    CHECK(t.healthy());
    t.allreduce(buffer.span(), terse::reduce_op::sum);
    t.barrier();
  });
}

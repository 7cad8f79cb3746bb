// nccl_transport::split and split_shared: on one GPU (a world of one, which
// every split keeps whole or alone), and across GPUs when the machine has
// two or more (one thread per device, each a rank).
#include <terse/core/concepts.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/nccl.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "device_vector.hpp"
#include "nccl_test_support.hpp"

static_assert(terse::concepts::splittable_transport<terse::nccl_transport>);
static_assert(std::is_same_v<decltype(std::declval<terse::nccl_transport&>().split(0, 0)), terse::nccl_transport>);
static_assert(std::is_same_v<decltype(std::declval<terse::metered<terse::nccl_transport&>&>().split_shared()),
                             terse::metered<terse::nccl_transport>>);

namespace {

// The sub-transport's allreduce of `value` over 257 floats, read back.
float sum_on(terse::nccl_transport& t, float value)
{
  const std::size_t n = 257;
  terse_test::device_vector<float> buffer(std::vector<float>(n, value));
  t.allreduce(buffer.span(), terse::reduce_op::sum);
  t.synchronize();
  const std::vector<float> result = buffer.download();
  CHECK(std::all_of(result.begin(), result.end(), [&](float x) { return x == result[0]; }));
  return result[0];
}

// Runs body(transport) for every rank of a world of min(devices, 4) GPUs;
// false (and nothing run) with fewer than two devices.
bool run_on_gpus(const std::function<void(terse::nccl_transport&)>& body)
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
                                                 {.timeout = std::chrono::seconds(60), .checked = true});
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

TEST_CASE("nccl split of a one-rank world: whole, alone and by host, checked and unchecked")
{
  terse::cuda_stream stream;
  for (const bool checked : {true, false}) {
    CAPTURE(checked);
    auto t = terse_test::single_rank(stream.get(), checked);
    terse::nccl_transport whole = t.split(3, 0);
    CHECK(whole.size() == 1);
    CHECK(whole.rank() == 0);
    CHECK(whole.options().checked == checked);
    CHECK(whole.stream() == t.stream());
    CHECK(sum_on(whole, 2.5f) == 2.5f);
    terse::nccl_transport alone = t.split(-1, 0);
    CHECK(alone.size() == 1);
    CHECK(sum_on(alone, 1.5f) == 1.5f);
    terse::nccl_transport host = t.split_shared();
    CHECK(host.size() == 1);
    CHECK(sum_on(host, 4.0f) == 4.0f);
    terse::nccl_transport nested = whole.split(0, 0);
    CHECK(sum_on(nested, 3.0f) == 3.0f);
    CHECK(sum_on(t, 1.0f) == 1.0f);  // the parent still works
    CHECK(t.healthy());
  }
}

TEST_CASE("nccl split across GPUs: groups by colour, a rank alone, and every GPU of this host")
{
  run_on_gpus([](terse::nccl_transport& t) {
    const int r = t.rank();
    const int w = t.size();
    // Colour 0: ranks 0 .. w-2, keys reversed; the last rank alone.
    terse::nccl_transport sub = t.split(r < w - 1 ? 0 : -1, -r);
    if (r < w - 1) {
      CHECK(sub.size() == w - 1);
      CHECK(sub.rank() == w - 2 - r);
      CHECK(sum_on(sub, static_cast<float>(r)) == static_cast<float>((w - 1) * (w - 2) / 2));
    } else {
      CHECK(sub.size() == 1);
      CHECK(sum_on(sub, 7.0f) == 7.0f);
    }
    terse::nccl_transport host = t.split_shared();
    CHECK(host.size() == w);  // every GPU is in this process, so on this host
    CHECK(host.rank() == r);
    CHECK(sum_on(host, 1.0f) == static_cast<float>(w));
  });
}

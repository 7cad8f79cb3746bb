// The device memory hook: with a resource installed, device buffers take
// their memory from it and give it back to the resource that made it. The
// resource here hands out host memory, so the test needs no GPU (nothing
// dereferences the pointers).
#include <terse/core/cuda_memory.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <vector>

namespace {
struct ledger {
  std::vector<std::size_t> allocated;
  std::vector<std::size_t> freed;
  std::vector<void*> live;
};

terse::device_memory_resource counting_resource(ledger& book)
{
  return terse::device_memory_resource{.allocate = [](std::size_t bytes, void* context) -> void* {
                                         auto& b = *static_cast<ledger*>(context);
                                         b.allocated.push_back(bytes);
                                         void* p = std::malloc(bytes);
                                         b.live.push_back(p);
                                         return p;
                                       },
                                       .deallocate =
                                           [](void* pointer, std::size_t bytes, void* context) {
                                             auto& b = *static_cast<ledger*>(context);
                                             b.freed.push_back(bytes);
                                             std::erase(b.live, pointer);
                                             std::free(pointer);
                                           },
                                       .context = &book};
}
}  // namespace

TEST_CASE("device buffers allocate from the installed resource and free through the one that made them")
{
  ledger first;
  ledger second;
  const terse::device_memory_resource previous = terse::set_device_memory_resource(counting_resource(first));
  CHECK((previous.allocate == nullptr));  // cudaMalloc by default
  {
    terse::device_buffer<float> buffer(100);
    CHECK(first.allocated == std::vector<std::size_t>{400});
    buffer.reserve(50);  // fits: nothing happens
    CHECK(first.allocated.size() == 1);
    terse::set_device_memory_resource(counting_resource(second));
    buffer.reserve(300);  // grows: the old block goes back to `first`, the new one comes from `second`
    CHECK(first.freed == std::vector<std::size_t>{400});
    CHECK(second.allocated == std::vector<std::size_t>{1600});
    terse::device_buffer<float> moved(std::move(buffer));
    CHECK(buffer.data() == nullptr);
    CHECK(moved.capacity() == 400);
  }
  CHECK(second.freed == std::vector<std::size_t>{1600});
  CHECK(first.live.empty());
  CHECK(second.live.empty());

  ledger refusing;
  terse::device_memory_resource none = counting_resource(refusing);
  none.allocate = [](std::size_t, void*) -> void* { return nullptr; };
  terse::set_device_memory_resource(none);
  try {
    terse::device_buffer<float> fails(10);
    FAIL("a resource that returns no memory must raise");
  } catch (const terse::error& e) {
    CHECK(e.code() == terse::errc::cuda);
  }
  terse::set_device_memory_resource(previous);
  CHECK((terse::current_device_memory_resource().allocate == nullptr));
}

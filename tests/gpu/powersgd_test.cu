// cuda::powersgd_state (cuBLAS) against compress::powersgd on the host
// (OpenBLAS): the same step to rounding, low-rank recovery, the non-finite
// and overflow refusals, n = 0 and 1, and saved state that moves between
// device and host.
#include <terse/compress/powersgd.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/cuda/powersgd.cuh>
#if defined(TERSE_WITH_NCCL)
#include <terse/transport/nccl.hpp>
#endif

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../compress/codec_test_support.hpp"
#include "../compress/powersgd_test_support.hpp"
#include "device_vector.hpp"
#if defined(TERSE_WITH_NCCL)
#include "nccl_test_support.hpp"
#endif

using powersgd_test::relative_error;
using terse_test::device_vector;

// Outside the anonymous namespace: nvcc flags its unused members there.
namespace powersgd_device_test {

/// One rank alone, on device memory: averaging over one rank changes nothing.
struct device_solo_transport {
  template <terse::memory_space S>
  static constexpr bool accepts_memory = S == terse::memory_space::device;
  int rank() const { return 0; }
  int size() const { return 1; }
  template <class T, terse::memory_space S>
  void allreduce(terse::span<T, S>, terse::reduce_op)
  {
    static_assert(S == terse::memory_space::device);
    ++calls;
  }
  int calls = 0;
};

}  // namespace powersgd_device_test

using powersgd_device_test::device_solo_transport;

namespace {

std::vector<float> step_values(std::size_t n, std::uint64_t step)
{
  return codec_test::gradient_like(n, 300 + step, 1.0f);
}

/// A device copy that kernels on any stream may read at once (a copy from
/// pageable memory may still be in flight when cudaMemcpy returns).
device_vector<float> upload(const std::vector<float>& values)
{
  device_vector<float> copy(values);
  TERSE_CUDA_TRY(cudaDeviceSynchronize());
  return copy;
}

/// The values once `stream` (non-blocking, so not ordered with cudaMemcpy)
/// has finished with them.
std::vector<float> download(const device_vector<float>& values, const terse::cuda_stream& stream)
{
  stream.synchronize();
  return values.download();
}

}  // namespace

TEST_CASE("powersgd device reduce equals the host reduce to rounding, step after step")
{
  terse::cuda_stream stream;
  for (const std::uint32_t rank : {1u, 2u, 4u}) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{10}, std::size_t{1000}, std::size_t{4099},
                                std::size_t{10007}, std::size_t{1} << 20}) {
      CAPTURE(rank);
      CAPTURE(n);
      terse::compress::powersgd host{.rank = rank};
      terse::cuda::powersgd_state device(host);
      powersgd_test::solo_transport host_t;
      device_solo_transport device_t;
      for (std::uint64_t step = 0; step < 3; ++step) {
        const terse::codec_context ctx{.seed = 7, .step = step, .bucket = 5};
        auto expected = step_values(n, step);
        host.reduce(ctx, host_t, terse::host_span<float>(expected));
        auto values = upload(step_values(n, step));
        device.reduce(ctx, device_t, values.span(), stream.get());
        stream.synchronize();
        CHECK(relative_error(download(values, stream), expected) < 1e-4);
      }
      CHECK(device_t.calls == 6);
      // The warm-started Q agrees too (same layout as the host's state).
      terse::compress::powersgd from_device{.rank = rank};
      powersgd_test::restore(from_device, powersgd_test::saved(device));
      const auto& a = from_device.state.buckets.at(5).q;
      const auto& b = host.state.buckets.at(5).q;
      CHECK(relative_error(a, b) < 1e-3);
    }
  }
}

TEST_CASE("powersgd device reduce per tensor equals the host's to rounding; vectors exact; state moves to the host")
{
  terse::cuda_stream stream;
  const std::vector<terse::tensor_shape> shapes{terse::tensor_shape::matrix(784, 256), terse::tensor_shape::vector(256),
                                                terse::tensor_shape::matrix(256, 10), terse::tensor_shape::vector(10)};
  const std::size_t n = 784 * 256 + 256 + 2560 + 10;
  terse::compress::powersgd host{.rank = 2};
  terse::cuda::powersgd_state device(host);
  powersgd_test::solo_transport host_t;
  device_solo_transport device_t;
  for (std::uint64_t step = 0; step < 3; ++step) {
    terse::codec_context ctx{.seed = 7, .step = step, .bucket = 5};
    ctx.tensors = shapes;
    auto expected = step_values(n, step);
    host.reduce(ctx, host_t, terse::host_span<float>(expected));
    const auto input = step_values(n, step);
    auto values = upload(input);
    device.reduce(ctx, device_t, values.span(), stream.get());
    const auto got = download(values, stream);
    CHECK(relative_error(got, expected) < 1e-4);
    for (std::size_t i = 784 * 256; i < 784 * 256 + 256; ++i) {
      CHECK(got[i] == input[i]);  // one rank: the dense average is the value itself
    }
  }
  CHECK(device_t.calls == 6);
  terse::compress::powersgd from_device{.rank = 2};
  powersgd_test::restore(from_device, powersgd_test::saved(device));
  CHECK(relative_error(from_device.state.groups.at(5).matrices[0].q, host.state.groups.at(5).matrices[0].q) < 1e-3);
}

TEST_CASE("powersgd device reduce recovers a rank-r matrix")
{
  terse::cuda_stream stream;
  for (const std::uint32_t rank : {1u, 2u, 4u}) {
    CAPTURE(rank);
    const auto m = powersgd_test::low_rank(300, 300, rank, 60 + rank);
    terse::cuda::powersgd_state device(rank);
    device_solo_transport t;
    for (std::uint64_t step = 0; step < 3; ++step) {
      auto values = upload(m);
      device.reduce({.step = step}, t, values.span(), stream.get());
      stream.synchronize();
      CHECK(relative_error(download(values, stream), m) < 1e-4);
    }
  }
}

TEST_CASE("powersgd device reduce refuses NaN, Inf and overflow with non_finite, values and Q unchanged")
{
  terse::cuda_stream stream;
  terse::cuda::powersgd_state device;
  device_solo_transport t;
  auto warm = upload(step_values(5000, 0));
  device.reduce({}, t, warm.span(), stream.get());
  const std::string before = powersgd_test::saved(device);
  for (const float special : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto bad = step_values(5000, 1);
    bad[4321] = special;
    auto values = upload(bad);
    CHECK(codec_test::error_code_of([&] { device.reduce({.step = 1}, t, values.span(), stream.get()); }) ==
          terse::errc::non_finite);
    const auto after = download(values, stream);
    CHECK(std::memcmp(after.data(), bad.data(), 4 * bad.size()) == 0);
    CHECK(powersgd_test::saved(device) == before);
  }
  auto huge = upload(std::vector<float>(33, std::numeric_limits<float>::max()));
  CHECK(codec_test::error_code_of([&] { device.reduce({.bucket = 1}, t, huge.span(), stream.get()); }) ==
        terse::errc::non_finite);
  CHECK(powersgd_test::saved(device) == before);  // the refused new bucket left no trace
  // The state still works.
  auto again = upload(step_values(5000, 2));
  device.reduce({.step = 2}, t, again.span(), stream.get());
  for (float x : download(again, stream)) {
    REQUIRE(std::isfinite(x));
  }
}

TEST_CASE("powersgd device reduce: n = 0 sends nothing, n = 1 is exact")
{
  terse::cuda_stream stream;
  terse::cuda::powersgd_state device;
  device_solo_transport t;
  device.reduce({}, t, terse::device_span<float>(), stream.get());
  CHECK(t.calls == 0);
  auto one = upload(std::vector<float>{-2.5f});
  device.reduce({.bucket = 1}, t, one.span(), stream.get());
  CHECK(download(one, stream) == std::vector<float>{-2.5f});
}

TEST_CASE("powersgd device state: k steps, save, load, k steps equals 2k steps bit for bit, host blobs load")
{
  terse::cuda_stream stream;
  const std::size_t n = 7777;
  device_solo_transport t;
  const auto run = [&](terse::cuda::powersgd_state& state, std::uint64_t first, std::uint64_t last) {
    std::vector<float> result;
    for (std::uint64_t step = first; step < last; ++step) {
      auto values = upload(step_values(n, step));
      state.reduce({.seed = 1, .step = step, .bucket = 2}, t, values.span(), stream.get());
      result = download(values, stream);
    }
    return result;
  };
  terse::cuda::powersgd_state straight;
  const auto expected = run(straight, 0, 6);
  terse::cuda::powersgd_state first_half;
  run(first_half, 0, 3);
  terse::cuda::powersgd_state resumed;
  powersgd_test::restore(resumed, powersgd_test::saved(first_half));
  const auto got = run(resumed, 3, 6);
  CHECK(std::memcmp(got.data(), expected.data(), 4 * n) == 0);

  // A host codec's state continues on the device, and a wrong rank is io.
  terse::compress::powersgd host;
  powersgd_test::solo_transport host_t;
  for (std::uint64_t step = 0; step < 3; ++step) {
    auto v = step_values(n, step);
    host.reduce({.seed = 1, .step = step, .bucket = 2}, host_t, terse::host_span<float>(v));
  }
  terse::cuda::powersgd_state from_host;
  powersgd_test::restore(from_host, powersgd_test::saved(host));
  CHECK(relative_error(run(from_host, 3, 6), expected) < 1e-4);
  terse::cuda::powersgd_state rank4(4);
  CHECK(codec_test::error_code_of([&] { powersgd_test::restore(rank4, powersgd_test::saved(host)); }) ==
        terse::errc::io);
}

#if defined(TERSE_WITH_NCCL)
TEST_CASE("powersgd device reduce over a one-rank NCCL transport equals the transport-free step")
{
  terse::cuda_stream stream;
  auto nccl = terse_test::single_rank(stream.get(), true);
  terse::cuda::powersgd_state over_nccl, alone;
  device_solo_transport solo;
  for (std::uint64_t step = 0; step < 3; ++step) {
    auto a = upload(step_values(4099, step));
    auto b = upload(step_values(4099, step));
    over_nccl.reduce({.step = step}, nccl, a.span(), stream.get());
    alone.reduce({.step = step}, solo, b.span(), stream.get());
    const auto x = download(a, stream);
    const auto y = download(b, stream);
    CHECK(std::memcmp(x.data(), y.data(), 4 * x.size()) == 0);
  }
  CHECK(codec_test::error_code_of([&] {
          terse::cuda_stream other;
          auto v = upload(step_values(100, 0));
          over_nccl.reduce({.bucket = 9}, nccl, v.span(), other.get());
        }) == terse::errc::invalid_argument);  // the transport's stream must be the step's
}
#endif

// The compressed allreduce on device buffers over a one-rank NCCL
// transport (what a single GPU can run), against the host collective on
// the same gradient: each aggregation path, with and without feedback,
// non-finite input, and state moving between device and host.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/cuda/allreduce.cuh>
#include <terse/feedback/residual.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/nccl.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "device_vector.hpp"
#include "nccl_test_support.hpp"

namespace {

std::vector<float> gradient(std::size_t n, int step)
{
  std::vector<float> g(n);
  for (std::size_t i = 0; i < n; ++i) {
    g[i] = 0.01f * std::sin(0.37f * static_cast<float>(i) + static_cast<float>(step));
  }
  return g;
}

const terse::layout& test_layout()
{
  static const std::vector<std::size_t> sizes{5000, 20, 3000};
  static const terse::layout shape(sizes, 6000, /*dense_below=*/64);
  return shape;
}

// `steps` averaging steps on the host collective (a world of one) and on
// the device one; returns both results of the last step.
template <class Codec, class Feedback>
std::pair<std::vector<float>, std::vector<float>> host_and_device(Codec codec, int steps)
{
  const terse::layout& shape = test_layout();
  std::vector<float> host_result;
  terse::run_local(1, [&](terse::local_transport& t) {
    terse::allreduce<Codec, Feedback> sync(t, shape, {}, codec);
    for (int step = 0; step < steps; ++step) {
      host_result = gradient(shape.total(), step);
      sync.average(terse::host_span<float>(host_result));
    }
  });
  terse::cuda_stream stream;
  auto nccl = terse_test::single_rank(stream.get(), true);
  terse::allreduce<Codec, Feedback, terse::nccl_transport> sync(nccl, shape, {}, codec);
  terse_test::device_vector<float> values(shape.total());
  for (int step = 0; step < steps; ++step) {
    stream.synchronize();
    values.upload(gradient(shape.total(), step));
    sync.average(values.span(), stream.get());
  }
  stream.synchronize();
  return {host_result, (stream.synchronize(), values.download())};
}

}  // namespace

TEST_CASE("device allreduce: summable cast, bit-identical to the host collective")
{
  const auto [host, device] = host_and_device<terse::compress::cast_bf16, terse::feedback::none>({}, 3);
  CHECK(host == device);
}

TEST_CASE("device allreduce: requantizable uniform<8> with residual feedback matches the host bit for bit")
{
  const auto [host, device] = host_and_device<terse::compress::uniform<8>, terse::feedback::residual>({}, 4);
  CHECK(host == device);
}

TEST_CASE("device allreduce: gather-only top-k with residual feedback matches the host bit for bit")
{
  const auto [host, device] = host_and_device<terse::compress::topk, terse::feedback::residual>({.density = 0.05f}, 4);
  CHECK(host == device);
}

TEST_CASE("device allreduce: non-finite input raises non_finite and keeps the feedback state")
{
  terse::cuda_stream stream;
  auto nccl = terse_test::single_rank(stream.get(), true);
  const terse::layout shape = terse::layout::single(4096);
  terse::allreduce<terse::compress::uniform<8>, terse::feedback::residual, terse::nccl_transport> sync(nccl, shape);
  terse_test::device_vector<float> values(shape.total());
  stream.synchronize();
  values.upload(gradient(shape.total(), 0));
  sync.average(values.span(), stream.get());
  std::ostringstream before;
  sync.save(before);
  auto bad = gradient(shape.total(), 1);
  bad[100] = std::numeric_limits<float>::quiet_NaN();
  stream.synchronize();
  values.upload(bad);
  CHECK(terse_test::error_of([&] { sync.average(values.span(), stream.get()); }) == terse::errc::non_finite);
  std::ostringstream after;
  sync.save(after);
  CHECK(before.str().size() == after.str().size());
}

TEST_CASE("device allreduce state restores into a host collective and continues identically")
{
  const terse::layout shape = terse::layout::single(2048);
  terse::cuda_stream stream;
  auto nccl = terse_test::single_rank(stream.get(), true);
  terse::allreduce<terse::compress::uniform<4>, terse::feedback::residual, terse::nccl_transport> on_device(nccl,
                                                                                                            shape);
  terse_test::device_vector<float> values(shape.total());
  for (int step = 0; step < 3; ++step) {
    stream.synchronize();
    values.upload(gradient(shape.total(), step));
    on_device.average(values.span(), stream.get());
  }
  std::stringstream blob;
  on_device.save(blob);
  stream.synchronize();
  values.upload(gradient(shape.total(), 3));
  on_device.average(values.span(), stream.get());
  const auto device_next = (stream.synchronize(), values.download());
  std::vector<float> host_next;
  terse::run_local(1, [&](terse::local_transport& t) {
    terse::allreduce<terse::compress::uniform<4>, terse::feedback::residual> on_host(t, shape);
    on_host.load(blob);
    host_next = gradient(shape.total(), 3);
    on_host.average(terse::host_span<float>(host_next));
  });
  CHECK(host_next == device_next);
}

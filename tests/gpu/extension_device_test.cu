// A user's codec on device buffers: acme::grid_floats (tests/extension),
// with its device functions declared in the user's namespace AFTER
// <terse/cuda/allreduce.cuh>. The device path finds them by
// argument-dependent lookup and gives the host collective's bits. Then the
// user's feedback rule acme::damped_residual on device buffers, through
// its device twin (the device feedback customization point).
#include <terse/collective/allreduce.hpp>
#include <terse/cuda/allreduce.cuh>
#include <terse/transport/local.hpp>
#include <terse/transport/nccl.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "../extension/acme_codecs.hpp"
#include "device_vector.hpp"
#include "nccl_test_support.hpp"

namespace acme {

__global__ void grid_round_kernel(const float* in, float* wire, std::uint64_t n, float step)
{
  const std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
  if (i < n) {
    wire[i] = nearbyintf(in[i] / step) * step;
  }
}

// The device half of acme::grid_floats, in acme's namespace.
void encode_values(const grid_floats& codec, const terse::codec_context&, terse::device_span<const float> in,
                   terse::device_span<float> wire, cudaStream_t stream, terse::device_workspace&)
{
  if (!in.empty()) {
    const auto blocks = static_cast<unsigned>((in.size() + 255) / 256);
    grid_round_kernel<<<blocks, 256, 0, stream>>>(in.data(), wire.data(), in.size(), codec.step);
    TERSE_CUDA_TRY(cudaGetLastError());
  }
}

void decode_values(const grid_floats&, const terse::codec_context&, terse::device_span<const float> wire,
                   terse::device_span<float> out, cudaStream_t stream, terse::device_workspace&)
{
  TERSE_CUDA_TRY(
      cudaMemcpyAsync(out.data(), wire.data(), wire.size() * sizeof(float), cudaMemcpyDeviceToDevice, stream));
}

}  // namespace acme

TEST_CASE("a user's summable codec on device buffers, found by ADL, matches the host collective bit for bit")
{
  const std::vector<std::size_t> sizes{3000, 20, 1000};
  const terse::layout shape(sizes, 4000, 64);
  std::vector<float> g(shape.total());
  for (std::size_t i = 0; i < g.size(); ++i) {
    g[i] = 0.01f * std::sin(0.37f * static_cast<float>(i));
  }
  std::vector<float> host = g;
  terse::run_local(1, [&](terse::local_transport& t) {
    terse::allreduce sync(t, shape, acme::grid_floats{.step = 1.0f / 256});
    sync.average(terse::host_span<float>(host));
  });
  terse::cuda_stream stream;
  auto nccl = terse_test::single_rank(stream.get(), true);
  terse::allreduce<acme::grid_floats, terse::feedback::none, terse::nccl_transport> sync(
      nccl, shape, {}, acme::grid_floats{.step = 1.0f / 256});
  terse_test::device_vector<float> values(shape.total());
  values.upload(g);
  sync.average(values.span(), stream.get());
  stream.synchronize();
  CHECK(values.download() == host);
}

TEST_CASE("a user's feedback rule runs on device buffers through the customization point, bit for bit")
{
  // acme::damped_residual's device twin (acme_codecs.hpp) is found through
  // acme::device_feedback_for; with a lossy user codec the residual matters.
  static_assert(terse::cuda::runs_on_device<acme::damped_residual>);
  const std::vector<std::size_t> sizes{3000, 20, 1000};
  const terse::layout shape(sizes, 4000, 64);
  const auto gradient = [&](int step) {
    std::vector<float> g(shape.total());
    for (std::size_t i = 0; i < g.size(); ++i) {
      g[i] = 0.01f * std::sin(0.37f * static_cast<float>(i) + static_cast<float>(step));
    }
    return g;
  };
  const acme::grid_floats codec{.step = 1.0f / 128};
  std::vector<float> host;
  std::string host_state;
  terse::run_local(1, [&](terse::local_transport& t) {
    terse::allreduce sync(t, shape, codec, acme::damped_residual(0.75f));
    for (int step = 0; step < 4; ++step) {
      host = gradient(step);
      sync.average(terse::host_span<float>(host));
    }
    std::ostringstream blob;
    sync.save(blob);
    host_state = blob.str();
  });
  terse::cuda_stream stream;
  auto nccl = terse_test::single_rank(stream.get(), true);
  terse::allreduce<acme::grid_floats, acme::damped_residual, terse::nccl_transport> sync(nccl, shape, {}, codec,
                                                                                         acme::damped_residual(0.75f));
  terse_test::device_vector<float> values(shape.total());
  for (int step = 0; step < 4; ++step) {
    stream.synchronize();
    values.upload(gradient(step));
    sync.average(values.span(), stream.get());
  }
  stream.synchronize();
  CHECK(values.download() == host);
  // The twin saves in the host rule's format: the same checkpoint bytes.
  std::ostringstream device_state;
  sync.save(device_state);
  CHECK(device_state.str() == host_state);
  // A held-back residual exists (the codec loses something), so the check
  // above compares real state.
  CHECK(host_state.size() > 64);
}

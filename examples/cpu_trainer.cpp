// The trainer pattern on the CPU: each bucket's exchange starts as soon as
// its gradients exist and the trainer waits for all before the optimizer
// step; after the step terse sees the parameters (the schedule decides what
// that does). Here: 4 ranks fit y = 3x - 1 by SGD, each on its own data,
// with top-1% sparsified gradients and error feedback, in two buckets.
#include <terse/terse.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {
// One linear model y = w x + b; the "tensors" are w and b (one value each),
// padded to a realistic flat buffer of 1000 weights (all but the first two
// stay at zero and have zero gradient).
constexpr std::size_t weights = 1000;

void backward(const std::vector<float>& params, int rank, int step, std::vector<float>& grads)
{
  std::fill(grads.begin(), grads.end(), 0.0f);
  for (int i = 0; i < 32; ++i) {
    const float x = static_cast<float>((rank * 977 + step * 31 + i * 7) % 100) / 50.0f - 1.0f;
    const float error = params[0] * x + params[1] - (3.0f * x - 1.0f);
    grads[0] += error * x / 32.0f;
    grads[1] += error / 32.0f;
  }
}
}  // namespace

int main()
{
  const std::vector<std::size_t> tensor_sizes{weights - 1, 1};
  const terse::layout shape(tensor_sizes, /*bucket_elements=*/512);
  std::vector<float> final_params(2);
  terse::run_local(4, [&](terse::local_transport& transport) {
    // readme:begin cpu-trainer
    terse::allreduce sync(transport, shape, terse::compress::topk{.density = 0.01f}, terse::feedback::residual{});
    std::vector<float> params(shape.total(), 0.0f), grads(shape.total());
    for (int step = 0; step < 300; ++step) {
      backward(params, transport.rank(), step, grads);  // the trainer's own code
      for (const terse::bucket& b : shape.buckets()) {  // as each bucket's gradients are ready
        sync.start(b.id, terse::host_span<float>(grads).subspan(b.offset, b.count));
      }
      sync.wait_all();                                   // all averaged in place (compressed)
      for (std::size_t i = 0; i < params.size(); ++i) {  // the trainer's optimizer
        params[i] -= 0.1f * grads[i];
      }
      sync.on_parameters(terse::host_span<float>(params));  // local SGD, FDA... would sync here
    }
    // readme:end cpu-trainer
    if (transport.rank() == 0) {
      final_params = {params[0], params[1]};
    }
  });
  std::printf("fitted y = %.3f x %+.3f (true: 3x - 1)\n", final_params[0], final_params[1]);
  return std::abs(final_params[0] - 3.0f) < 0.05f && std::abs(final_params[1] + 1.0f) < 0.05f ? 0 : 1;
}

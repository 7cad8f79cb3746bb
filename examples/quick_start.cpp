// Average a gradient across 4 ranks (threads of this process) with terse.
#include <terse/terse.hpp>

#include <cstdio>
#include <vector>

int main()
{
  const std::vector<std::size_t> tensor_sizes{784 * 128, 128, 128 * 10, 10};  // an MLP
  const terse::layout shape(tensor_sizes, /*bucket_elements=*/1 << 16);

  terse::run_local(4, [&](terse::local_transport& transport) {
    terse::allreduce sync(transport, shape);  // dense, every step
    std::vector<float> grads(shape.total(), static_cast<float>(transport.rank()));
    sync.on_gradients(terse::host_span<float>(grads));  // averaged in place
    if (transport.rank() == 0) {
      std::printf("mean gradient = %.2f (expected 1.50)\n", grads[0]);
    }
  });
}

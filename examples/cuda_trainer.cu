// The trainer pattern on a GPU: gradients and parameters stay on the
// device; terse averages them on the trainer's stream over NCCL, with bf16
// compression. One process per GPU; this example runs one rank (a world of
// one) — with several GPUs, share the ncclUniqueId (e.g. with MPI) and call
// nccl_transport::create(rank, size, id, stream) on each.
#include <terse/cuda/allreduce.cuh>
#include <terse/terse.hpp>
#include <terse/transport/nccl.hpp>

#include <cstdio>
#include <vector>

__global__ void sgd_step(float* params, const float* grads, float lr, std::size_t n)
{
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    params[i] -= lr * grads[i];
  }
}

int main()
{
  if (terse::cuda_device_count() == 0) {
    std::printf("cuda_trainer: no CUDA device here; nothing to run\n");
    return 0;
  }
  const std::vector<std::size_t> tensor_sizes{4096 * 1024, 1024};
  const terse::layout shape(tensor_sizes, 1 << 22, /*dense_below=*/4096);
  terse::cuda_stream stream;
  ncclUniqueId id;
  TERSE_NCCL_TRY(ncclGetUniqueId(&id));
  auto nccl = terse::nccl_transport::create(/*rank=*/0, /*size=*/1, id, stream.get());
  terse::device_buffer<float> params(shape.total()), grads(shape.total());
  TERSE_CUDA_TRY(cudaMemsetAsync(params.data(), 0, shape.total() * sizeof(float), stream.get()));
  TERSE_CUDA_TRY(cudaMemsetAsync(grads.data(), 0, shape.total() * sizeof(float), stream.get()));
  // readme:begin cuda-trainer
  terse::allreduce sync(nccl, shape, terse::compress::cast_bf16{});
  for (int step = 0; step < 10; ++step) {
    // ... the trainer's forward and backward kernels write grads on `stream` ...
    sync.on_gradients(grads.span(shape.total()), stream.get());  // bf16 on the wire
    sgd_step<<<256, 256, 0, stream.get()>>>(params.data(), grads.data(), 0.01f, shape.total());
    sync.on_parameters(params.span(shape.total()), stream.get());
  }
  // readme:end cuda-trainer
  stream.synchronize();
  std::printf("cuda_trainer: 10 steps done\n");
  return 0;
}

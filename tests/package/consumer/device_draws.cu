// terse's host/device functions in a consumer's own kernel.
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/philox.hpp>

#include <vector>

namespace {
__global__ void draw(terse::random_stream stream, std::size_t n, float* out)
{
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i < n) {
    out[i] = stream.uniform(i);
  }
}
}  // namespace

std::vector<float> device_uniforms(const terse::random_stream& stream, std::size_t n)
{
  terse::device_buffer<float> buffer(n);
  draw<<<static_cast<unsigned>((n + 127) / 128), 128>>>(stream, n, buffer.data());
  TERSE_CUDA_TRY(cudaGetLastError());
  std::vector<float> values(n);
  TERSE_CUDA_TRY(cudaMemcpy(values.data(), buffer.data(), n * sizeof(float), cudaMemcpyDeviceToHost));
  return values;
}

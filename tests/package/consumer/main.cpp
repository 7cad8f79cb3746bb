// A user of an installed terse: the umbrella header, a two-rank local
// allreduce, a Philox draw and fp16 rounding, plus the MPI and NCCL pieces
// when those components are linked. Prints "terse consumer ok" on success.
#include <terse/terse.hpp>

#include <cstdio>
#include <vector>

#if defined(TERSE_WITH_MPI)
#include <terse/core/mpi_error.hpp>

#include <mpi.h>
#endif

#if defined(TERSE_WITH_NCCL)
#include <terse/core/cuda_memory.hpp>
#include <terse/transport/nccl.hpp>

// device_draws.cu: random_stream draws computed by a kernel.
std::vector<float> device_uniforms(const terse::random_stream& stream, std::size_t n);
#endif

namespace {

bool host_checks()
{
  std::vector<std::vector<float>> results(2);
  terse::run_local(2, [&](terse::local_transport& t) {
    std::vector<float> values{1.0f + static_cast<float>(t.rank()), 2.0f, 3.0f};
    t.allreduce(terse::host_span<float>(values), terse::reduce_op::sum);
    results[static_cast<std::size_t>(t.rank())] = values;
  });
  const bool sums = results[0] == std::vector<float>{3.0f, 4.0f, 6.0f} && results[1] == results[0];

  const terse::random_stream stream{.seed = 1, .step = 2, .stream = 3};
  const float u = stream.uniform(12345);
  const bool uniform = u >= 0.0f && u < 1.0f && u == stream.uniform(12345);

  const bool rounds = static_cast<float>(terse::fp16(1.0f / 3.0f)) == 0.333251953125f;
  return sums && uniform && rounds;
}

#if defined(TERSE_WITH_MPI)
bool mpi_checks()
{
  int rank = -1;
  TERSE_MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  double mine = 1.5;
  double sum = 0;
  TERSE_MPI_TRY(MPI_Allreduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  int size = 0;
  TERSE_MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &size));
  return sum == 1.5 * size;
}
#endif

#if defined(TERSE_WITH_NCCL)
// 77: built and linked, but there is no device to run on.
int nccl_checks()
{
  if (terse::cuda_device_count() == 0) {
    std::puts("SKIP: no CUDA device");
    return 77;
  }
  const terse::random_stream stream{.seed = 9, .step = 1, .stream = 0};
  const std::vector<float> drawn = device_uniforms(stream, 64);
  for (std::size_t i = 0; i < drawn.size(); ++i) {
    if (drawn[i] != stream.uniform(i)) {
      return 1;
    }
  }
  ncclUniqueId id;
  TERSE_NCCL_TRY(ncclGetUniqueId(&id));
  terse::cuda_stream cuda;
  auto t = terse::nccl_transport::create(0, 1, id, cuda.get());
  terse::device_buffer<float> buffer(3);
  const float values[3] = {1, 2, 3};
  TERSE_CUDA_TRY(cudaMemcpy(buffer.data(), values, sizeof values, cudaMemcpyHostToDevice));
  t.allreduce(buffer.span(3), terse::reduce_op::sum);
  t.synchronize();
  float back[3] = {};
  TERSE_CUDA_TRY(cudaMemcpy(back, buffer.data(), sizeof back, cudaMemcpyDeviceToHost));
  return back[0] == 1 && back[1] == 2 && back[2] == 3 ? 0 : 1;
}
#endif

}  // namespace

int main(int argc, char** argv)
{
  (void)argc;
  (void)argv;
  bool ok = host_checks();
#if defined(TERSE_WITH_MPI)
  TERSE_MPI_TRY(MPI_Init(&argc, &argv));
  ok = mpi_checks() && ok;
  TERSE_MPI_TRY(MPI_Finalize());
#endif
#if defined(TERSE_WITH_NCCL)
  const int nccl = nccl_checks();
  if (nccl == 77) {
    return 77;
  }
  ok = nccl == 0 && ok;
#endif
  std::puts(ok ? "terse consumer ok" : "terse consumer FAILED");
  return ok ? 0 : 1;
}

// Allreduce throughput of the MPI transport against memcpy of the same
// buffer and against the MPI library's own MPI_Allreduce, measured in the
// same run. Run under mpirun (scripts/bench does, for W = 2, 4, 8): every
// rank runs every benchmark a fixed number of iterations, so the
// collectives pair up; rank 0 reports.
#include <terse/transport/mpi.hpp>

#include <mpi.h>

#include <string_view>
#include <vector>

#include "bench_support.hpp"

namespace {

std::int64_t iterations_for(std::size_t bytes)
{
  if (bytes <= 64 * terse::bench::kib) {
    return 300;
  }
  if (bytes <= 4 * terse::bench::mib) {
    return 30;
  }
  return 4;
}

// Made in main() inside the MPI session, destroyed before it ends.
terse::mpi_transport* the_transport = nullptr;

void terse_mpi_allreduce(benchmark::State& state)
{
  terse::mpi_transport& transport = *the_transport;
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::vector<float> buffer(bytes / sizeof(float), 1.0f);
  MPI_Barrier(MPI_COMM_WORLD);
  for (auto _ : state) {
    transport.allreduce(terse::host_span<float>(buffer), terse::reduce_op::sum);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["W"] = transport.size();
}

void native_mpi_allreduce(benchmark::State& state)
{
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::vector<float> buffer(bytes / sizeof(float), 1.0f);
  MPI_Barrier(MPI_COMM_WORLD);
  for (auto _ : state) {
    MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(buffer.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

void register_all()
{
  for (std::size_t bytes = terse::bench::kib; bytes <= 256 * terse::bench::mib; bytes *= 4) {
    const auto arg = static_cast<std::int64_t>(bytes);
    benchmark::RegisterBenchmark("memcpy_reference", terse::bench::memcpy_reference)
        ->Arg(arg)
        ->Iterations(iterations_for(bytes));
    benchmark::RegisterBenchmark("terse_mpi_allreduce", terse_mpi_allreduce)
        ->Arg(arg)
        ->Iterations(iterations_for(bytes))
        ->UseRealTime();
    benchmark::RegisterBenchmark("native_mpi_allreduce", native_mpi_allreduce)
        ->Arg(arg)
        ->Iterations(iterations_for(bytes))
        ->UseRealTime();
  }
}

// Ranks other than 0 run everything but print nothing.
class silent_reporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv)
{
  terse::mpi_session session(&argc, &argv);
  terse::mpi_transport transport(MPI_COMM_WORLD, terse::transport_options{.checked = false});
  the_transport = &transport;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<char*> args(argv, argv + argc);
  if (rank != 0) {  // only rank 0 writes the JSON file
    std::erase_if(args, [](char* a) { return std::string_view(a).starts_with("--benchmark_out"); });
  }
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  register_all();
  if (rank == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    silent_reporter silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  return 0;
}

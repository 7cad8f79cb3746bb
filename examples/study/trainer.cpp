#include "trainer.hpp"

#include <terse/core/verbs.hpp>

namespace study {

double thread_cpu_seconds()
{
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

namespace detail {

void append_point(const run_context& ctx, std::uint64_t step, const double (&sums)[7], run_result& result)
{
  const double workers = static_cast<double>(ctx.workers);
  const double examples = static_cast<double>(ctx.data->test.count);
  result.curve.push_back(curve_point{
      .step = step,
      .epoch = static_cast<double>(step) / static_cast<double>(ctx.steps_per_epoch),
      .bytes_sent = sums[2] / workers,
      .accuracy = sums[0] / examples,
      .test_loss = sums[1] / examples,
      .train_loss = sums[6] > 0 ? sums[5] / sums[6] : 0.0,
      .comm_model_s = sums[3] / workers,
      .compute_s = sums[4] / workers,
  });
}

void sum_over_processes([[maybe_unused]] const run_context& ctx, [[maybe_unused]] worker_totals& own)
{
#if defined(TERSE_STUDY_WITH_MPI)
  double sums[] = {own.bytes_sent, own.bytes_received, own.comm_model_s, own.compute_s, own.sync_cpu_s, own.exchanges};
  try {
    ctx.mpi->allreduce(terse::host_span<double>(sums), terse::reduce_op::sum);
  } catch (const terse::error&) {
    // A failed peer: the run already reports its failure; report this
    // process's own figures as if every worker had them.
    const double w = ctx.workers;
    sums[0] = own.bytes_sent * w;
    sums[1] = own.bytes_received * w;
    sums[2] = own.comm_model_s * w;
    sums[3] = own.compute_s * w;
    sums[4] = own.sync_cpu_s * w;
    sums[5] = own.exchanges * w;
  }
  own = worker_totals{.bytes_sent = sums[0],
                      .bytes_received = sums[1],
                      .comm_model_s = sums[2],
                      .compute_s = sums[3],
                      .sync_cpu_s = sums[4],
                      .exchanges = sums[5]};
#endif
}

}  // namespace detail
}  // namespace study

#include "trainer.hpp"

#include <terse/core/verbs.hpp>

#include <algorithm>
#include <array>

namespace study {

double thread_cpu_seconds()
{
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

terse::network_model network_for(const configuration& config, const run_context& ctx)
{
  terse::network_model model = terse::network_model::gbps(ctx.gbps, ctx.latency_s);
  if (!config.has_knob("slow_gbps")) {
    return model;
  }
  const auto w = static_cast<std::size_t>(ctx.workers);
  std::vector<double> nics(w, model.bandwidth_bytes_per_s);
  const double slow = config.knob("slow_gbps") * 1e9 / 8.0;
  nics[w - 1] = slow;
  if (w >= 2) {
    nics[w / 2 - 1] = slow;
  }
  return terse::network_model::from_nics(nics, ctx.latency_s);
}

namespace detail {

void append_point(const run_context& ctx, std::uint64_t step, const double (&sums)[evaluation_sums], double workers,
                  run_result& result)
{
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
      .consensus_distance = sums[7] / workers,
      .simulated_s = sums[8] / workers,
  });
}

worker_totals mean_over_workers([[maybe_unused]] const run_context& ctx, const std::vector<worker_totals>& totals)
{
  const auto as_array = [](const worker_totals& t) {
    return std::array<double, 6>{t.bytes_sent, t.bytes_received, t.comm_model_s,
                                 t.compute_s,  t.sync_cpu_s,     t.exchanges};
  };
  std::array<double, 6> mean{};
  for (const worker_totals& t : totals) {  // sum first: byte counts stay exact
    const std::array<double, 6> x = as_array(t);
    for (std::size_t i = 0; i < mean.size(); ++i) {
      mean[i] += x[i];
    }
  }
  for (double& m : mean) {
    m /= static_cast<double>(totals.size());
  }
#if defined(TERSE_STUDY_WITH_MPI)
  if (ctx.mpi != nullptr) {
    try {
      ctx.mpi->allreduce(terse::host_span<double>(mean), terse::reduce_op::average);
    } catch (const terse::error&) {
      // A failed peer: the run already reports its failure; this process's
      // own figures stand in for the mean.
    }
  }
#endif
  return worker_totals{.bytes_sent = mean[0],
                       .bytes_received = mean[1],
                       .comm_model_s = mean[2],
                       .compute_s = mean[3],
                       .sync_cpu_s = mean[4],
                       .exchanges = mean[5]};
}

}  // namespace detail
}  // namespace study

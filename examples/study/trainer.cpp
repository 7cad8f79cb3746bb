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

void evaluate(terse::local_transport& local, mlp& model, std::span<const float> parameters, std::vector<float>& average,
              const run_context& ctx, std::uint64_t step, const worker_totals& own, double& train_loss_sum,
              double& train_loss_count, run_result& result)
{
  std::copy(parameters.begin(), parameters.end(), average.begin());
  local.allreduce(terse::host_span<float>(average), terse::reduce_op::average);
  const dataset& test = ctx.data->test;
  const auto w = static_cast<std::size_t>(ctx.workers);
  const auto r = static_cast<std::size_t>(local.rank());
  const mlp::score score = model.evaluate(average, test, test.count * r / w, test.count * (r + 1) / w);
  double sums[] = {score.correct, score.loss_sum, own.bytes_sent,  own.comm_model_s,
                   own.compute_s, train_loss_sum, train_loss_count};
  local.allreduce(terse::host_span<double>(sums), terse::reduce_op::sum);
  train_loss_sum = 0;
  train_loss_count = 0;
  if (local.rank() != 0) {
    return;
  }
  const double workers = static_cast<double>(ctx.workers);
  const double examples = static_cast<double>(test.count);
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

}  // namespace detail
}  // namespace study

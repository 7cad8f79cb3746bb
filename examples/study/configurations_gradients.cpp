// Configurations that average gradients every step (synchronous SGD), with
// each compressor and its customary feedback.
#include <terse/compress/cast.hpp>
#include <terse/compress/dgc.hpp>
#include <terse/compress/identity.hpp>
#include <terse/compress/powersgd.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/none.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/every_step.hpp>

#include "configuration.hpp"
#include "trainer.hpp"

namespace study {
namespace {

using namespace terse;
using schedule::every_step;

auto dense(const configuration&, const run_context&)
{
  return policies<compress::identity, feedback::none, every_step>{};
}

auto bf16(const configuration&, const run_context&)
{
  return policies<compress::cast_bf16, feedback::none, every_step>{};
}

auto qsgd(const configuration&, const run_context&)
{
  return policies<compress::qsgd<15>, feedback::none, every_step>{};
}

auto uniform4(const configuration&, const run_context&)
{
  return policies<compress::uniform<4>, feedback::residual, every_step>{};
}

auto topk(const configuration& c, const run_context&)
{
  return policies<compress::topk, feedback::residual, every_step>{
      compress::topk{.density = static_cast<float>(c.knob("density"))}, {}, {}};
}

// The same top-k, aggregated by the sparse reduce-scatter: each shard's
// owner re-selects the top-k of the shard's average, and what it drops goes
// back into its residual.
auto topk_reduce_scatter(const configuration& c, const run_context& ctx)
{
  auto made = topk(c, ctx);
  made.sparse = sparse_aggregation::reduce_scatter;
  return made;
}

auto dgc(const configuration& c, const run_context&)
{
  compress::dgc codec;
  codec.density = static_cast<float>(c.knob("density"));
  const feedback::dgc_config momentum{.momentum = static_cast<float>(c.knob("dgc_momentum")),
                                      .max_norm = 0.0f,
                                      .warmup_steps = static_cast<std::uint64_t>(c.knob("warmup_steps")),
                                      .warmup_density = 0.25};
  return policies<compress::dgc, feedback::dgc_momentum, every_step>{
      std::move(codec), feedback::dgc_momentum(momentum), {}};
}

auto powersgd(const configuration& c, const run_context&)
{
  compress::powersgd codec;
  codec.rank = static_cast<std::uint32_t>(c.knob("rank"));
  return policies<compress::powersgd, feedback::residual, every_step>{std::move(codec), {}, {}};
}

/// PowerSGD as it was before layouts carried shapes: every compressed
/// segment reshaped into one near-square matrix (the codec's fallback),
/// kept to compare with the per-layer rows in the same build.
struct flat_powersgd : compress::powersgd {
  template <class Transport>
  void reduce(const terse::codec_context& ctx, Transport& t, terse::host_span<float> values)
  {
    terse::codec_context flat = ctx;
    flat.tensors = {};
    compress::powersgd::reduce(flat, t, values);
  }
};

auto powersgd_flat(const configuration& c, const run_context&)
{
  flat_powersgd codec;
  codec.rank = static_cast<std::uint32_t>(c.knob("rank"));
  return policies<flat_powersgd, feedback::residual, every_step>{std::move(codec), {}, {}};
}

}  // namespace

void add_gradient_configurations(std::vector<configuration>& list)
{
  list.push_back(make_configuration("dense", "synchronous SGD: fp32 gradients averaged every step",
                                    {{"lr", 0.1}, {"momentum", 0.9}}, dense));
  list.push_back(make_configuration("bf16", "gradients cast to bfloat16, summed in fp32, every step",
                                    {{"lr", 0.1}, {"momentum", 0.9}}, bf16));
  list.push_back(make_configuration("qsgd-5bit", "QSGD, s = 15 levels (sign + 4 bits), buckets of 512, every step",
                                    {{"lr", 0.1}, {"momentum", 0.9}}, qsgd));
  list.push_back(make_configuration("uniform-4bit",
                                    "4-bit stochastic min-max quantization, buckets of 512, + residual, every step",
                                    {{"lr", 0.1}, {"momentum", 0.9}}, uniform4));
  for (const auto& [name, density] : {std::pair{"topk-1%", 0.01}, {"topk-0.1%", 0.001}, {"topk-0.01%", 0.0001}}) {
    list.push_back(make_configuration(name, "top-k of each weight tensor + residual feedback, every step",
                                      {{"lr", 0.05}, {"momentum", 0.9}, {"density", density}}, topk));
  }
  list.push_back(make_configuration("topk-1%-rs",
                                    "top-k of each weight tensor + residual, sparse reduce-scatter (owners re-select "
                                    "the top-k of each shard's average, the rest fed back), every step",
                                    {{"lr", 0.05}, {"momentum", 0.9}, {"density", 0.01}}, topk_reduce_scatter));
  list.push_back(make_configuration(
      "dgc-0.1%",
      "DGC: sampled threshold, momentum correction and masking (optimizer without momentum), density warm-up from 25%",
      {{"lr", 0.05}, {"momentum", 0.0}, {"density", 0.001}, {"dgc_momentum", 0.9}, {"warmup_steps", 60}}, dgc));
  // lr 0.2 diverged within the first epoch (the residual holds most of the
  // gradient and returns it late); 0.1 trains steadily.
  list.push_back(make_configuration("powersgd-r2",
                                    "PowerSGD rank 2, each weight matrix with its own shape (warm-started power "
                                    "step) + residual, every step",
                                    {{"lr", 0.1}, {"momentum", 0.0}, {"rank", 2}}, powersgd));
  list.push_back(make_configuration("powersgd-r2-flat",
                                    "PowerSGD rank 2 with each layer reshaped to a near-square matrix (no layer "
                                    "shapes) + residual, every step",
                                    {{"lr", 0.1}, {"momentum", 0.0}, {"rank", 2}}, powersgd_flat));
}

}  // namespace study

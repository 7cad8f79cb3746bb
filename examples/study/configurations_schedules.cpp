// Configurations whose schedule decides from what it monitors when to
// average the models (FDA, event-triggered, adaptive intervals) or runs an
// outer optimizer over local SGD (SlowMo, BMUF), and compositions of a
// schedule with a compressed model delta.
#include <terse/compress/identity.hpp>
#include <terse/compress/sign.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/none.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/adaptive_interval.hpp>
#include <terse/schedule/bmuf.hpp>
#include <terse/schedule/event_triggered.hpp>
#include <terse/schedule/fda.hpp>
#include <terse/schedule/periodic.hpp>
#include <terse/schedule/slowmo.hpp>

#include "configuration.hpp"
#include "trainer.hpp"

namespace study {
namespace {

using namespace terse;

schedule::fda make_fda(const configuration& c, schedule::fda_estimator estimator)
{
  return schedule::fda(schedule::fda_config{.threshold = c.knob("theta"), .estimator = estimator});
}

schedule::periodic every_h(const configuration& c)
{
  return schedule::periodic(static_cast<std::uint64_t>(c.knob("H")));
}

compress::topk topk(const configuration& c)
{
  return compress::topk{.density = static_cast<float>(c.knob("density"))};
}

auto fda_linear(const configuration& c, const run_context&)
{
  return policies<compress::identity, feedback::none, schedule::fda>{
      {}, {}, make_fda(c, schedule::fda_estimator::linear)};
}

auto fda_sketch(const configuration& c, const run_context&)
{
  return policies<compress::identity, feedback::none, schedule::fda>{
      {}, {}, make_fda(c, schedule::fda_estimator::sketch)};
}

auto fda_linear_topk(const configuration& c, const run_context&)
{
  return policies<compress::topk, feedback::residual, schedule::fda>{
      topk(c), {}, make_fda(c, schedule::fda_estimator::linear)};
}

auto fda_linear_sign(const configuration& c, const run_context&)
{
  return policies<compress::sign, feedback::residual, schedule::fda>{
      {}, {}, make_fda(c, schedule::fda_estimator::linear)};
}

auto fda_linear_2bit(const configuration& c, const run_context&)
{
  return policies<compress::uniform<2>, feedback::residual, schedule::fda>{
      {}, {}, make_fda(c, schedule::fda_estimator::linear)};
}

// SlowMo with alpha = 1 and beta = 0 is plain local SGD (bit for bit); over
// a deciding base with average_delta it averages x - x_block_start through
// the codec, so top-k compresses the drift, not the model.
auto local_sgd_topk(const configuration& c, const run_context&)
{
  using outer = schedule::slowmo<schedule::periodic>;
  return policies<compress::topk, feedback::residual, outer>{
      topk(c), {}, outer(every_h(c), {.alpha = 1.0, .beta = 0.0, .lr = c.knob("lr"), .average_delta = true})};
}

auto local_sgd_sign(const configuration& c, const run_context&)
{
  using outer = schedule::slowmo<schedule::periodic>;
  return policies<compress::sign, feedback::residual, outer>{
      {}, {}, outer(every_h(c), {.alpha = 1.0, .beta = 0.0, .lr = c.knob("lr"), .average_delta = true})};
}

auto slowmo(const configuration& c, const run_context&)
{
  using outer = schedule::slowmo<schedule::periodic>;
  return policies<compress::identity, feedback::none, outer>{
      {}, {}, outer(every_h(c), {.alpha = c.knob("alpha"), .beta = c.knob("beta"), .lr = c.knob("lr")})};
}

auto bmuf(const configuration& c, const run_context&)
{
  using outer = schedule::bmuf<schedule::periodic>;
  return policies<compress::identity, feedback::none, outer>{
      {}, {}, outer(every_h(c), {.block_momentum = c.knob("eta"), .block_lr = c.knob("zeta"), .nesterov = true})};
}

auto event(const configuration& c, const run_context&)
{
  const schedule::event_config config{.on = schedule::event_config::signal::model_drift,
                                      .threshold = c.knob("threshold"),
                                      .adapt = c.knob("adapt"),
                                      .min_period = 1,
                                      .max_period = 1000};
  return policies<compress::identity, feedback::none, schedule::event_triggered>{
      {}, {}, schedule::event_triggered(config)};
}

auto adacomm(const configuration& c, const run_context&)
{
  const schedule::adaptive_config config{.initial_period = static_cast<std::uint64_t>(c.knob("H0")),
                                         .max_period = static_cast<std::uint64_t>(c.knob("max_H")),
                                         .which = schedule::adaptive_config::rule::adacomm};
  return policies<compress::identity, feedback::none, schedule::adaptive_interval>{
      {}, {}, schedule::adaptive_interval(config)};
}

}  // namespace

void add_schedule_configurations(std::vector<configuration>& list)
{
  list.push_back(make_configuration(
      "fda-linear", "FDA, linear variance estimate (2 doubles a step), fp32 delta averaged when Var > theta",
      {{"lr", 0.05}, {"momentum", 0.9}, {"theta", 0.5}}, fda_linear));
  list.push_back(make_configuration("fda-sketch",
                                    "FDA, AMS-sketch (5x250) variance estimate, fp32 delta averaged when Var > theta",
                                    {{"lr", 0.05}, {"momentum", 0.9}, {"theta", 0.5}}, fda_sketch));
  list.push_back(make_configuration(
      "fda-linear+topk", "FDA (linear) averaging the model delta compressed by top-k + residual feedback",
      {{"lr", 0.05}, {"momentum", 0.9}, {"theta", 0.5}, {"density", 0.01}}, fda_linear_topk));
  list.push_back(make_configuration(
      "fda-linear+sign", "FDA (linear) averaging the model delta as scaled signs (1 bit + a scale per 512) + residual",
      {{"lr", 0.05}, {"momentum", 0.9}, {"theta", 0.3}}, fda_linear_sign));
  list.push_back(make_configuration(
      "fda-linear+2bit", "FDA (linear) averaging the model delta quantized to 2 bits (min-max per 512) + residual",
      {{"lr", 0.05}, {"momentum", 0.9}, {"theta", 0.3}}, fda_linear_2bit));
  list.push_back(make_configuration("local-H32+topk",
                                    "local SGD averaging the model delta compressed by top-k + residual feedback",
                                    {{"lr", 0.05}, {"momentum", 0.9}, {"H", 32}, {"density", 0.01}}, local_sgd_topk));
  list.push_back(make_configuration(
      "local-H8+sign", "local SGD averaging the model delta as scaled signs (1 bit + a scale per 512) + residual",
      {{"lr", 0.05}, {"momentum", 0.9}, {"H", 8}}, local_sgd_sign));
  list.push_back(make_configuration("slowmo-H32", "SlowMo over local SGD: slow momentum beta, slow learning rate alpha",
                                    {{"lr", 0.05}, {"momentum", 0.9}, {"H", 32}, {"alpha", 1.0}, {"beta", 0.5}},
                                    slowmo));
  list.push_back(make_configuration("bmuf-H32",
                                    "BMUF over local SGD: Nesterov block momentum eta, block learning rate zeta",
                                    {{"lr", 0.05}, {"momentum", 0.9}, {"H", 32}, {"eta", 0.5}, {"zeta", 1.0}}, bmuf));
  list.push_back(make_configuration(
      "event", "event-triggered: average the delta when the largest model drift crosses an adaptive threshold",
      {{"lr", 0.05}, {"momentum", 0.9}, {"threshold", 32}, {"adapt", 0.25}}, event));
  list.push_back(make_configuration("adacomm", "adaptive interval, AdaComm: H = ceil(sqrt(F / F0) H0), at most max_H",
                                    {{"lr", 0.05}, {"momentum", 0.9}, {"H0", 32}, {"max_H", 64}}, adacomm));
}

}  // namespace study

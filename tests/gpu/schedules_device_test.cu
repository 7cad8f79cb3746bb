// Every schedule that drives the exchange, on device buffers
// (<terse/cuda/schedules.cuh>), against the same schedule on host buffers:
// W = 4 ranks as threads sharing this GPU over the local transport, each on
// its own stream, averaging through the host collective (staged through
// pinned memory, as staged_gossip does). Decisions, probes and parameters
// must match bit for bit over 20 steps. One more case drives slowmo<fda>
// through terse::allreduce over a one-rank NCCL transport (the device
// monitor path).
#include <terse/collective/allreduce.hpp>
#include <terse/compress/cast.hpp>
#include <terse/cuda/allreduce.cuh>
#include <terse/cuda/schedules.cuh>
#include <terse/schedule/adaptive_interval.hpp>
#include <terse/schedule/bmuf.hpp>
#include <terse/schedule/event_triggered.hpp>
#include <terse/schedule/fda.hpp>
#include <terse/schedule/slowmo.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/nccl.hpp>

#include <doctest/doctest.h>

#include <vector>

#include "device_vector.hpp"
#include "nccl_test_support.hpp"
#include "schedule_scenarios.hpp"

namespace {

namespace ss = schedule_scenarios;
namespace ts = terse::schedule;

/// The host collective as an averager of device buffers: each average
/// copies the values to the host, averages them there and copies them back.
struct staged_averager {
  terse::allreduce<>& sync;
  std::vector<float> host;

  void average(terse::device_span<float> values, terse::stream_ref stream)
  {
    const cudaStream_t s = stream.as<cudaStream_t>();
    host.resize(values.size());
    TERSE_CUDA_TRY(
        cudaMemcpyAsync(host.data(), values.data(), values.size() * sizeof(float), cudaMemcpyDeviceToHost, s));
    TERSE_CUDA_TRY(cudaStreamSynchronize(s));
    sync.average(terse::host_span<float>(host));
    TERSE_CUDA_TRY(
        cudaMemcpyAsync(values.data(), host.data(), values.size() * sizeof(float), cudaMemcpyHostToDevice, s));
    TERSE_CUDA_TRY(cudaStreamSynchronize(s));
  }
  void monitor(terse::host_span<double> values, terse::reduce_op op) { sync.monitor(values, op); }
};

/// The device half of ss::run_host: the same steps, the schedule on device
/// buffers (the optimizer step still on host copies, so both halves feed
/// it the same bits).
template <class Schedule, class Probe>
std::vector<ss::trace> run_device(const Schedule& proto, Probe probe, bool with_start)
{
  std::vector<ss::trace> out(ss::world);
  terse::run_local(ss::world, [&](terse::local_transport& t) {
    Schedule schedule = proto;
    terse::allreduce<> sync(t, terse::layout::single(ss::n));
    staged_averager averager{sync, {}};
    terse::cuda_stream stream;
    const terse::stream_ref s(stream.get());
    std::vector<float> x = ss::initial();
    terse_test::device_vector<float> xd(x);
    terse_test::device_vector<float> gd(ss::n);
    if (with_start) {
      schedule.start(terse::device_span<const float>(xd.span()), s);
    }
    ss::trace& tr = out[static_cast<std::size_t>(t.rank())];
    for (int step = 0; step < ss::steps; ++step) {
      const terse::step_context ctx{static_cast<std::uint64_t>(step)};
      std::vector<float> g = ss::gradient(t.rank(), step);
      stream.synchronize();
      if constexpr (terse::concepts::schedule_observes_gradients<Schedule, terse::allreduce<>>) {
        gd.upload(g);
        schedule.on_gradients(ctx, gd.span(), averager, s);
      }
      if constexpr (requires { schedule.observe_loss(1.0); }) {
        schedule.observe_loss(ss::loss(t.rank(), step));
      }
      stream.synchronize();
      x = xd.download();
      ss::sgd(x, g);
      xd.upload(x);
      tr.actions.push_back(schedule.on_parameters(ctx, xd.span(), averager, s));
      tr.probes.push_back(probe(schedule));
    }
    stream.synchronize();
    tr.parameters = xd.download();
  });
  return out;
}

template <class Schedule, class Probe>
void check_same(const Schedule& proto, Probe probe, bool with_start)
{
  const auto host = ss::run_host(proto, probe, with_start);
  const auto device = run_device(proto, probe, with_start);
  for (int r = 0; r < ss::world; ++r) {
    const auto& h = host[static_cast<std::size_t>(r)];
    const auto& d = device[static_cast<std::size_t>(r)];
    CAPTURE(r);
    CHECK(d.actions == h.actions);
    CHECK(d.probes == h.probes);
    CHECK(d.parameters == h.parameters);
  }
  // The scenario syncs sometimes, not always: the decisions are exercised.
  CHECK(host[0].syncs() > 1);
  CHECK(host[0].syncs() < ss::steps);
}

const auto estimate = [](const ts::fda& f) { return f.last_estimate(); };
const auto signal = [](const ts::event_triggered& e) { return e.last_signal(); };

}  // namespace

TEST_CASE("fda on device buffers takes the host's decisions bit for bit, every estimator, W = 4")
{
  SUBCASE("naive")
  {
    check_same(ts::fda({.threshold = 15, .estimator = ts::fda_estimator::naive}), estimate, true);
  }
  SUBCASE("linear")
  {
    check_same(ts::fda({.threshold = 15, .estimator = ts::fda_estimator::linear}), estimate, true);
  }
  SUBCASE("sketch, reference established by an exact average")
  {
    check_same(ts::fda({.threshold = 15, .estimator = ts::fda_estimator::sketch}), estimate, false);
  }
}

TEST_CASE("event_triggered on device buffers matches the host bit for bit, W = 4")
{
  SUBCASE("model drift")
  {
    check_same(ts::event_triggered({.threshold = 3.0}), signal, true);
  }
  SUBCASE("gradient norm")
  {
    check_same(ts::event_triggered({.on = ts::event_config::signal::gradient_norm, .threshold = 3.0}), signal, false);
  }
}

TEST_CASE("adaptive_interval on device buffers matches the host bit for bit, W = 4")
{
  check_same(
      ts::adaptive_interval({.initial_period = 2, .max_period = 8}),
      [](const ts::adaptive_interval& a) { return static_cast<double>(a.period()); }, true);
}

TEST_CASE("slowmo on device buffers matches the host bit for bit, W = 4")
{
  SUBCASE("over periodic, averaging the delta")
  {
    check_same(
        ts::slowmo<>(ts::periodic(3), {.alpha = 1.0, .beta = 0.6, .lr = 0.05, .average_delta = true}),
        [](const ts::slowmo<>& s) { return static_cast<double>(s.outer_steps()); }, true);
  }
  SUBCASE("over fda")
  {
    check_same(
        ts::slowmo<ts::fda>(ts::fda({.threshold = 15}), {.beta = 0.5, .lr = 0.05}),
        [](const ts::slowmo<ts::fda>& s) { return s.base().last_estimate(); }, true);
  }
}

TEST_CASE("bmuf on device buffers matches the host bit for bit, W = 4")
{
  SUBCASE("over periodic, first block average as x0")
  {
    check_same(
        ts::bmuf<>(ts::periodic(4), {.block_momentum = 0.5}),
        [](const ts::bmuf<>& b) { return static_cast<double>(b.outer_steps()); }, false);
  }
  SUBCASE("over event_triggered, classical block momentum")
  {
    check_same(
        ts::bmuf<ts::event_triggered>(ts::event_triggered({.threshold = 3.0}),
                                      {.block_momentum = 0.5, .nesterov = false}),
        [](const ts::bmuf<ts::event_triggered>& b) { return b.base().last_signal(); }, true);
  }
}

TEST_CASE("slowmo<fda> through terse::allreduce on device buffers over NCCL matches the host collective")
{
  // One rank: the monitored state goes through the device monitor of the
  // collective (NCCL on the trainer's stream) instead of the host one; the
  // delta is averaged through bf16 (the device path's codecs match the host
  // collective bit for bit).
  const terse::layout shape = terse::layout::single(ss::n);
  const ts::slowmo<ts::fda> proto(ts::fda({.threshold = 1.0}), {.beta = 0.5, .lr = 0.05});
  std::vector<terse::sync_action> host_actions;
  std::vector<float> host_x = ss::initial();
  terse::run_local(1, [&](terse::local_transport& t) {
    terse::allreduce<terse::compress::cast_bf16, terse::feedback::none, terse::local_transport, ts::slowmo<ts::fda>>
        sync(t, shape, {}, {}, {}, proto);
    sync.schedule().start(terse::host_span<const float>(host_x));
    for (int step = 0; step < ss::steps; ++step) {
      ss::sgd(host_x, ss::gradient(step % 3, step));
      host_actions.push_back(sync.on_parameters(terse::host_span<float>(host_x)));
    }
  });
  terse::cuda_stream stream;
  auto nccl = terse_test::single_rank(stream.get(), true);
  terse::allreduce<terse::compress::cast_bf16, terse::feedback::none, terse::nccl_transport, ts::slowmo<ts::fda>> sync(
      nccl, shape, {}, {}, {}, proto);
  std::vector<float> x = ss::initial();
  terse_test::device_vector<float> xd(x);
  sync.schedule().start(terse::device_span<const float>(xd.span()), stream.get());
  std::vector<terse::sync_action> device_actions;
  for (int step = 0; step < ss::steps; ++step) {
    stream.synchronize();
    x = xd.download();
    ss::sgd(x, ss::gradient(step % 3, step));
    xd.upload(x);
    device_actions.push_back(sync.on_parameters(xd.span(), stream.get()));
  }
  stream.synchronize();
  CHECK(device_actions == host_actions);
  CHECK(xd.download() == host_x);
}

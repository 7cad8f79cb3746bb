#pragma once
// The schedule scenarios of schedules_device_test.cu, host half: W = 4
// ranks as threads over the local transport, 20 local steps of a fixed
// pseudo-gradient, each schedule driven through its hooks with a dense
// allreduce as the averager. The device half runs the same steps on device
// buffers and must record the same trace, bit for bit.
#include <terse/collective/allreduce.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/transport/local.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

namespace schedule_scenarios {

inline constexpr int world = 4;
inline constexpr int steps = 20;
// Not a multiple of the reduction block (256) and two sketch chunks (4096).
inline constexpr std::size_t n = 5003;
inline constexpr float lr = 0.05f;

inline std::vector<float> initial()
{
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = 0.5f * std::cos(0.013f * static_cast<float>(i));
  }
  return x;
}

inline std::vector<float> gradient(int rank, int step)
{
  std::vector<float> g(n);
  for (std::size_t i = 0; i < n; ++i) {
    g[i] = std::sin(0.01f * static_cast<float>(i) + 0.7f * static_cast<float>(rank) + 0.3f * static_cast<float>(step)) *
           (1.0f + 0.25f * static_cast<float>(rank)) / (1.0f + 0.1f * static_cast<float>(step));
  }
  return g;
}

inline double loss(int rank, int step)
{
  return 2.0 / (1.0 + step) + 0.01 * rank;
}

/// What one rank saw: each step's action and probe, and the final parameters.
struct trace {
  std::vector<terse::sync_action> actions;
  std::vector<double> probes;
  std::vector<float> parameters;
  int syncs() const
  {
    int count = 0;
    for (const terse::sync_action a : actions) {
      count += a == terse::sync_action::average ? 1 : 0;
    }
    return count;
  }
};

/// The optimizer step the trainer takes (on host copies in both halves).
inline void sgd(std::vector<float>& x, const std::vector<float>& g)
{
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] -= lr * g[i];
  }
}

/// The host half: `proto` copied on every rank, `probe(schedule)` recorded
/// after each step (an estimate, a signal, a period).
template <class Schedule, class Probe>
std::vector<trace> run_host(const Schedule& proto, Probe probe, bool with_start)
{
  std::vector<trace> out(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    Schedule schedule = proto;
    terse::allreduce<> sync(t, terse::layout::single(n));
    std::vector<float> x = initial();
    if (with_start) {
      schedule.start(terse::host_span<const float>(x));
    }
    trace& tr = out[static_cast<std::size_t>(t.rank())];
    for (int step = 0; step < steps; ++step) {
      const terse::step_context ctx{static_cast<std::uint64_t>(step)};
      std::vector<float> g = gradient(t.rank(), step);
      if constexpr (terse::concepts::schedule_observes_gradients<Schedule, terse::allreduce<>>) {
        schedule.on_gradients(ctx, terse::host_span<float>(g), sync);
      }
      if constexpr (requires { schedule.observe_loss(1.0); }) {
        schedule.observe_loss(loss(t.rank(), step));
      }
      sgd(x, g);
      tr.actions.push_back(schedule.on_parameters(ctx, terse::host_span<float>(x), sync));
      tr.probes.push_back(probe(schedule));
    }
    tr.parameters = x;
  });
  return out;
}

}  // namespace schedule_scenarios

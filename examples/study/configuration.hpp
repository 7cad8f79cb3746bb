#pragma once
// A configuration of the study: a compile-time terse::allreduce type (its
// compressor, feedback and schedule) or terse::gossip type (its mixer over
// a topology), and a runtime row of knobs (learning rate, momentum, H,
// density, Θ, γ, ...) that --set can override.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fashion_mnist.hpp"
#include "partition.hpp"
#include "progress.hpp"
#include "results.hpp"

namespace terse {
class mpi_transport;
}

namespace study {

/// Everything a run needs besides its configuration.
struct run_context {
  /// The learning rate at `step` for a base rate `lr`.
  double lr_at(double lr, std::uint64_t step) const;

  const fashion_mnist* data = nullptr;
  const shards* parts = nullptr;
  std::string partition;
  std::vector<std::size_t> widths;  ///< the MLP
  int workers = 8;
  std::uint64_t steps = 0;
  std::uint64_t steps_per_epoch = 1;  ///< steps after which all workers together have seen the training set once
  std::size_t batch = 32;
  std::uint64_t eval_every = 1;
  std::uint64_t seed = 1;
  double gbps = 10;
  double latency_s = 25e-6;
  bool cosine_lr = true;  ///< decay the learning rate to zero over the run (cosine); else constant
  /// Under SMPI: forward+backward charged at this many flop/s of simulated
  /// time, codec work at its declared speed, and the simulated clock
  /// recorded (--declared-compute; 0: off).
  double declared_flops_per_s = 0;
  progress* bar = nullptr;
  /// Set when this process is one of `workers` MPI processes (--transport
  /// mpi); null when the workers are threads of this process.
  terse::mpi_transport* mpi = nullptr;
};

struct configuration;

/// Builds the collective's policies from the knobs and trains with them.
using runner = std::function<run_result(const run_context&, const configuration&)>;

struct configuration {
  std::string name;
  std::string description;
  /// Knobs in print order: lr and momentum (the optimizer) first.
  std::vector<std::pair<std::string, double>> knobs;
  runner run;

  /// A knob's value; throws std::invalid_argument when it has none by that name.
  double knob(std::string_view key) const;
  /// Whether `key` names one of its knobs.
  bool has_knob(std::string_view key) const;
  void set_knob(std::string_view key, double value);
  /// "lr=0.05 momentum=0.9 H=8".
  std::string knobs_text() const;
};

/// Every configuration of the study, in table order.
std::vector<configuration> all_configurations();

/// The part of the list that averages gradients every step (configurations_gradients.cpp).
void add_gradient_configurations(std::vector<configuration>& list);
/// The part that averages models every H steps (configurations_models.cpp).
void add_model_configurations(std::vector<configuration>& list);
/// The monitoring schedules, outer optimizers and compositions (configurations_schedules.cpp).
void add_schedule_configurations(std::vector<configuration>& list);
/// The decentralized ones: gossip over a topology instead of an allreduce (configurations_gossip.cpp).
void add_gossip_configurations(std::vector<configuration>& list);

/// Applies "CONFIG.KEY=VALUE" overrides (CONFIG may be * for every
/// configuration having KEY); throws std::invalid_argument for an unknown
/// configuration or knob or a bad value.
void apply_overrides(std::vector<configuration>& list, const std::vector<std::string>& overrides);

/// The named configurations, in the order given; throws std::invalid_argument naming an unknown one.
std::vector<configuration> select(const std::vector<configuration>& list, const std::vector<std::string>& names);

}  // namespace study

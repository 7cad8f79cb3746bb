#pragma once
// The training loop every configuration shares, templated on the
// collective's policies: W workers (threads on terse's local transport, or
// MPI processes on its mpi transport), each with its own model replica and
// shard, talking through terse::simulated_network<terse::metered<...>> so every byte
// (monitoring included) is counted and its time on the modelled network
// charged. The trainer owns the model, the optimizer and the data; terse
// is called at its two hooks, after backward and after the optimizer step
// (a terse::allreduce), or at the second alone (a terse::gossip: each
// worker steps on its own gradient, then mixes its model with its
// neighbours').
// Over 400 lines because the loop, the collective factories it
// instantiates and the evaluation it calls are one template unit, read
// together; the simulated-clock helpers live in simulated_time.hpp.

#include <terse/collective/allreduce.hpp>
#include <terse/collective/gossip.hpp>
#include <terse/collective/layout.hpp>
#include <terse/core/error.hpp>
#include <terse/topology/graph.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>
#if defined(TERSE_STUDY_WITH_MPI)
#include <terse/transport/mpi.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <ctime>
#include <type_traits>
#include <utility>
#include <vector>

#include "configuration.hpp"
#include "departure.hpp"
#include "mlp.hpp"
#include "planned_collectives.hpp"
#include "sampler.hpp"
#include "simulated_time.hpp"

namespace study {

/// The policies one configuration composes, built from its knobs, and how
/// a sparse codec's payloads are aggregated.
template <class Compressor, class Feedback, class Schedule>
struct policies {
  Compressor compressor;
  Feedback feedback;
  Schedule schedule;
  terse::sparse_aggregation sparse = terse::sparse_aggregation::allgather;
};

/// The decentralized collective one configuration composes: a terse::gossip
/// mixing the parameters over `graph` after every optimizer step.
template <class Mixer>
struct gossip_policies {
  terse::topology::graph graph;
  Mixer mixer;
};

/// The transport stack of every worker over its base transport (terse's
/// local transport, or its mpi transport with --transport mpi):
/// terse::simulated_network<terse::metered<Base&>>; both decorators pass on
/// the per-peer failure reports a rerouting gossip asks for.
template <class Base>
using study_transport = terse::simulated_network<terse::metered<Base&>>;

/// The modelled network of a run: every link at --gbps, or, for a
/// configuration with a `slow_gbps` knob, ranks W/2 - 1 and W - 1 on NICs of
/// that many Gb/s (a link runs at the slower of its two ends).
terse::network_model network_for(const configuration& config, const run_context& ctx);

/// Tensors below this many elements (the biases) are averaged uncompressed.
inline constexpr std::size_t dense_below = 1024;

/// CPU seconds this thread has used (waiting on a peer costs none).
double thread_cpu_seconds();

namespace detail {

/// What one worker measured, summed over the workers at each evaluation.
struct worker_totals {
  double bytes_sent = 0;
  double bytes_received = 0;
  double comm_model_s = 0;
  double compute_s = 0;
  double sync_cpu_s = 0;
  double exchanges = 0;
  double simulated_s = 0;  ///< simulated seconds of training (--declared-compute under SMPI)
};

/// Whether a collective is a terse::gossip (else a terse::allreduce).
template <class Collective>
struct is_gossip : std::false_type {
};
template <class Value, class Mixer, class Transport, class Schedule>
struct is_gossip<terse::gossip<Value, Mixer, Transport, Schedule>> : std::true_type {
};
template <class Mixer, class Transport>
struct is_gossip<replanned_gossip<Mixer, Transport>> : std::true_type {
};
template <class Value, class Transport>
struct is_gossip<terse::clustered_gossip<Value, Transport>> : std::true_type {
};

/// What a collective sends over sub-transports of its own (a clustered
/// gossip's clusters), which the world's decorators do not see.
template <class Collective>
void add_sub_transport_totals(Collective& sync, worker_totals& own)
{
  if constexpr (requires { sync.cluster_transport().modelled_seconds(); }) {
    auto& sub = sync.cluster_transport();
    const terse::verb_meter sent = sub.inner().counts().total();
    own.bytes_sent += static_cast<double>(sent.bytes_sent);
    own.bytes_received += static_cast<double>(sent.bytes_received);
    own.comm_model_s += sub.modelled_seconds();
  }
}

/// How many numbers evaluate() sums over the workers.
inline constexpr std::size_t evaluation_sums = 9;

/// Turns the sums evaluate() gathered into a point of the curve.
/// `workers`: how many took part (fewer than ctx.workers once one left).
void append_point(const run_context& ctx, std::uint64_t step, const double (&sums)[evaluation_sums], double workers,
                  run_result& result);

/// The allreduce of a study::policies.
template <class Transport, class Compressor, class Feedback, class Schedule>
auto make_collective(Transport& network, const terse::layout& shape, const run_context& ctx,
                     policies<Compressor, Feedback, Schedule> made)
{
  return terse::allreduce<Compressor, Feedback, Transport, Schedule>(
      network, shape, terse::allreduce_config{.seed = ctx.seed, .check_finite = true, .sparse = made.sparse},
      std::move(made.compressor), std::move(made.feedback), std::move(made.schedule));
}

/// The gossip of a study::gossip_policies. The plan check (an allreduce of
/// two integers per round, on by default in debug builds) is off: every
/// worker builds the same graph, and the bytes are the mixer's alone.
template <class Transport, class Mixer>
auto make_collective(Transport& network, const terse::layout& shape, const run_context& ctx,
                     gossip_policies<Mixer> made)
{
  return terse::gossip<float, Mixer, Transport>(network, shape.total(), std::move(made.graph),
                                                terse::gossip_options{.seed = ctx.seed, .check_plan = false},
                                                std::move(made.mixer));
}

/// A gossip re-planned from measured links (planned_collectives.hpp).
template <class Transport, class Mixer>
auto make_collective(Transport& network, const terse::layout& shape, const run_context& ctx,
                     replanned_policies<Mixer> made)
{
  return replanned_gossip<Mixer, Transport>(network, shape.total(), ctx.seed, std::move(made));
}

/// Gossip between clusters of similar speed (planned_collectives.hpp).
template <class Transport>
auto make_collective(Transport& network, const terse::layout& shape, const run_context&, clustered_policies made)
{
  return make_clustered(network, shape.total(), made);
}

/// Evaluates the average of the workers' models on the test set (each
/// worker scores a slice) and, on rank 0, appends the point to the curve,
/// with the consensus distance (1/W) sum_i ||x_i - xbar||^2, exactly. Runs
/// on the raw base transport: evaluation and this probe are measurements,
/// not the algorithm's traffic, and are neither metered nor modelled.
/// After a worker left, `members` lists the survivors: the average, the
/// distance and the figures are theirs (empty: every worker).
template <class Base>
void evaluate(Base& base, const std::vector<int>& members, mlp& model, std::span<const float> parameters,
              std::vector<float>& average, const run_context& ctx, std::uint64_t step, const worker_totals& own,
              double& train_loss_sum, double& train_loss_count, run_result& result)
{
  std::copy(parameters.begin(), parameters.end(), average.begin());
  const bool everyone = members.empty();
  if (everyone) {
    base.allreduce(terse::host_span<float>(average), terse::reduce_op::average);
  } else {
    sum_over(base, members, terse::host_span<float>(average));
    const auto m = static_cast<float>(members.size());
    for (float& a : average) {
      a /= m;
    }
  }
  const dataset& test = ctx.data->test;
  const auto w = everyone ? static_cast<std::size_t>(ctx.workers) : members.size();
  const auto r = everyone ? static_cast<std::size_t>(base.rank())
                          : static_cast<std::size_t>(std::ranges::find(members, base.rank()) - members.begin());
  const mlp::score score = model.evaluate(average, test, test.count * r / w, test.count * (r + 1) / w);
  double distance = 0;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    const double d = static_cast<double>(parameters[i]) - static_cast<double>(average[i]);
    distance += d * d;
  }
  double sums[evaluation_sums] = {score.correct,  score.loss_sum,   own.bytes_sent, own.comm_model_s, own.compute_s,
                                  train_loss_sum, train_loss_count, distance,       own.simulated_s};
  if (everyone) {
    base.allreduce(terse::host_span<double>(sums), terse::reduce_op::sum);
  } else {
    sum_over(base, members, terse::host_span<double>(sums));
  }
  train_loss_sum = 0;
  train_loss_count = 0;
  if (r == 0) {
    append_point(ctx, step, sums, static_cast<double>(w), result);
  }
}

/// One worker's whole run over `base`: the model replica, its shard, the
/// optimizer and the two hooks into terse. The worker `leaving` names
/// stops after its steps; the survivors wait until its death is known, then
/// go on without it, and report through the first of them.
template <class Base, class Make>
void run_worker(Base& base, const run_context& ctx, const configuration& config, const Make& make,
                const terse::layout& shape, departure& leaving, worker_totals& own, run_result& result)
{
  const double lr = config.knob("lr");
  const double momentum = config.knob("momentum");
  const int rank = base.rank();
  study_transport<Base> network(terse::metered<Base&>(base), network_for(config, ctx));
  auto made = make(config, ctx);
  // --declared-compute: what each step's forward+backward and each
  // exchange's codec work cost in simulated time (simulated_time.hpp).
  const bool declared = ctx.declared_flops_per_s > 0;
  const double step_seconds =
      declared ? simulated::step_flops(shape.total(), ctx.batch) / ctx.declared_flops_per_s : 0.0;
  const double exchange_seconds = declared ? simulated::codec_seconds(made, ctx.workers, shape.total()) : 0.0;
  auto sync = make_collective(network, shape, ctx, std::move(made));
  constexpr bool decentralized = is_gossip<decltype(sync)>::value;
  if (rank == 0) {
    result.decentralized = decentralized;
  }

  mlp model(ctx.widths);
  std::vector<float> parameters(shape.total());
  std::vector<float> gradients(shape.total());
  std::vector<float> velocity(momentum > 0 ? shape.total() : 0, 0.0f);
  std::vector<float> average(shape.total());
  model.initialise(parameters, ctx.seed);  // the same seed everywhere: replicas start equal
  if constexpr (requires { sync.schedule().start(terse::host_span<const float>(parameters)); }) {
    sync.schedule().start(terse::host_span<const float>(parameters));  // x_last / x0 of the model schedules
  }
  sampler batches((*ctx.parts)[static_cast<std::size_t>(rank)], ctx.batch, ctx.seed, rank);
  double train_loss_sum = 0;
  double train_loss_count = 0;
  const auto mu = static_cast<float>(momentum);
  std::vector<int> members;  // the survivors once a worker left; empty while all are in
  int reporter = 0;          // who appends the curve and drives the progress bar
  simulated::training_clock clock(declared);

  for (std::uint64_t step = 0; step < ctx.steps; ++step) {
    if (leaving.rank >= 0 && step == leaving.after_step) {
      if (rank == leaving.rank) {
        if constexpr (requires { base.abort("leaves"); }) {
          base.abort("this worker left mid-training");  // known dead to the transport before `gone` is set
        }
        leaving.gone = true;
        return;
      }
      wait_until_gone(leaving);
      members = survivors_of(ctx.workers, leaving.rank);
      reporter = members.front();
    }
    if (rank == reporter) {
      result.failed_at_step = step + 1;  // the step under way, should it raise
    }
    const double t0 = thread_cpu_seconds();
    const double loss = model.train_batch(parameters, gradients, ctx.data->train, batches.next());
    const double t1 = thread_cpu_seconds();
    simulated::charge(step_seconds);
    std::uint64_t exchanges_before = 0;
    if constexpr (!decentralized) {
      exchanges_before = sync.step();
      sync.on_gradients(terse::host_span<float>(gradients));  // gossip leaves each worker its own gradient
    }
    const double t2 = thread_cpu_seconds();
    const double lr_now = ctx.lr_at(lr, step);
    const auto fl = static_cast<float>(lr_now);
    if (mu > 0) {
      for (std::size_t i = 0; i < parameters.size(); ++i) {
        velocity[i] = mu * velocity[i] + gradients[i];
        parameters[i] -= fl * velocity[i];
      }
    } else {
      for (std::size_t i = 0; i < parameters.size(); ++i) {
        parameters[i] -= fl * gradients[i];
      }
    }
    const double t3 = thread_cpu_seconds();
    if constexpr (requires { sync.schedule().set_lr(lr_now); }) {
      sync.schedule().set_lr(lr_now);  // SlowMo's gamma follows the inner learning rate
    }
    if constexpr (requires { sync.schedule().observe_loss(loss); }) {
      sync.schedule().observe_loss(loss);  // before on_parameters, as the loss-driven schedules expect
    }
    sync.on_parameters(terse::host_span<float>(parameters));
    const double t4 = thread_cpu_seconds();
    if constexpr (!decentralized) {
      // After the exchange, not inside it: its phases are not ours to split.
      simulated::charge(exchange_seconds * static_cast<double>(sync.step() - exchanges_before));
    }
    own.compute_s += (t1 - t0) + (t3 - t2);
    own.sync_cpu_s += (t2 - t1) + (t4 - t3);
    train_loss_sum += loss;
    train_loss_count += 1;

    if ((step + 1) % ctx.eval_every == 0 || step + 1 == ctx.steps) {
      const terse::verb_meter sent = network.inner().counts().total();
      own.bytes_sent = static_cast<double>(sent.bytes_sent);
      own.bytes_received = static_cast<double>(sent.bytes_received);
      own.comm_model_s = network.modelled_seconds();
      add_sub_transport_totals(sync, own);
      if constexpr (decentralized) {
        own.exchanges = static_cast<double>(sync.rounds());
      } else {
        own.exchanges = static_cast<double>(sync.step());
      }
      own.simulated_s = clock.pause();  // evaluating is a measurement, not training
      evaluate(base, members, model, parameters, average, ctx, step + 1, own, train_loss_sum, train_loss_count, result);
      clock.resume();
    }
    if constexpr (requires { sync.members(); }) {
      if (rank == reporter && !members.empty() && result.agreed_at_round == 0 && sync.members() == members) {
        result.agreed_at_round = sync.rounds();  // the survivors moved to their own graph
      }
    }
    if (rank == reporter && ctx.bar != nullptr) {
      ctx.bar->step(config.name + " (" + ctx.partition + ")", step, ctx.steps,
                    result.curve.empty() ? 0.0 : result.curve.back().accuracy);
    }
  }
}

/// The workers' figures averaged: over `totals` (one per thread), or with
/// --transport mpi over the processes (`totals` holds this process's).
worker_totals mean_over_workers(const run_context& ctx, const std::vector<worker_totals>& totals);

}  // namespace detail

/// Trains with the policies `make(config, ctx)` returns (a study::policies
/// or a study::gossip_policies) and returns what was measured. A
/// terse::error during training (e.g. a diverged run's non-finite gradients
/// or a gossip's errc::diverged) ends the run and is reported in `failure`,
/// with the curve up to that point.
template <class Make>
run_result train(const run_context& ctx, const configuration& config, Make make)
{
  const mlp shape_of(ctx.widths);
  // Each layer's shape (W_l a matrix, b_l a vector): PowerSGD compresses
  // every weight matrix with its own shape; other codecs ignore shapes.
  const std::vector<terse::tensor_shape> tensors = shape_of.tensor_shapes();
  const terse::layout shape(tensors, std::size_t{1} << 22, dense_below);

  run_result result;
  result.config = config.name;
  result.description = config.description;
  result.partition = ctx.partition;
  result.steps = ctx.steps;
  // One entry per worker thread, or (with MPI) this process's worker.
  std::vector<detail::worker_totals> totals(ctx.mpi != nullptr ? 1 : static_cast<std::size_t>(ctx.workers));
  departure leaving;
  const auto start = std::chrono::steady_clock::now();
  try {
    schedule_departure(config, ctx, leaving);
    if (ctx.mpi != nullptr) {
#if defined(TERSE_STUDY_WITH_MPI)
      detail::run_worker(*ctx.mpi, ctx, config, make, shape, leaving, totals.front(), result);
#endif
    } else {
      // A worker that leaves is a failure of that peer alone.
      terse::transport_options options;
      if (leaving.rank >= 0) {
        options.failures = terse::failure_scope::peer;
      }
      terse::run_local(
          ctx.workers,
          [&](terse::local_transport& local) {
            detail::run_worker(local, ctx, config, make, shape, leaving, totals[static_cast<std::size_t>(local.rank())],
                               result);
          },
          options);
    }
  } catch (const terse::error& e) {
    result.failure = e.what();
  }
  if (leaving.rank >= 0 && ctx.mpi == nullptr) {
    totals.erase(totals.begin() + leaving.rank);  // the per-worker figures are the survivors'
    result.left_rank = leaving.rank;
    result.left_after_step = leaving.after_step;
  }
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const detail::worker_totals mean = detail::mean_over_workers(ctx, totals);
  result.bytes_sent = mean.bytes_sent;
  result.bytes_received = mean.bytes_received;
  result.comm_model_s = mean.comm_model_s;
  result.compute_s = mean.compute_s;
  result.sync_cpu_s = mean.sync_cpu_s;
  result.exchanges = static_cast<std::uint64_t>(std::llround(mean.exchanges));
  return result;
}

/// A configuration whose policies `make(config, ctx)` builds.
template <class Make>
configuration make_configuration(std::string name, std::string description,
                                 std::vector<std::pair<std::string, double>> knobs, Make make)
{
  return configuration{std::move(name), std::move(description), std::move(knobs),
                       [make](const run_context& ctx, const configuration& c) { return train(ctx, c, make); }};
}

}  // namespace study

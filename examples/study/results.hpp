#pragma once
// What one training run measured, and the figures derived from it.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace study {

/// One evaluation of the averaged model. Byte and time figures are the mean
/// over the workers, cumulative since the start of the run.
struct curve_point {
  std::uint64_t step = 0;  ///< optimizer steps taken by every worker
  double epoch = 0;        ///< passes over the training set (all workers together)
  double bytes_sent = 0;   ///< per worker, monitoring included (terse::metered)
  double accuracy = 0;     ///< test accuracy of the averaged model, in [0, 1]
  double test_loss = 0;
  double train_loss = 0;    ///< mean minibatch loss since the previous point
  double comm_model_s = 0;  ///< modelled communication time (terse::simulated_network)
  double compute_s = 0;     ///< measured CPU time of forward, backward and optimizer
  /// (1/W) sum_i ||x_i - xbar||^2 over the workers' models, measured
  /// exactly on the unmetered transport (neither counted nor modelled).
  double consensus_distance = 0;
  /// Simulated seconds of training (SMPI's MPI_Wtime, evaluations left
  /// out), mean over the workers; 0 without --declared-compute.
  double simulated_s = 0;
};

struct run_result {
  std::string config;
  std::string description;
  std::string partition;
  std::vector<curve_point> curve;
  std::uint64_t steps = 0;
  std::uint64_t exchanges = 0;  ///< collective exchanges (rank 0's count; the same on every rank)
  double bytes_sent = 0;        ///< per worker, whole run
  double bytes_received = 0;
  double compute_s = 0;        ///< per worker: forward, backward and optimizer (thread CPU time)
  double sync_cpu_s = 0;       ///< per worker: CPU time inside terse calls (encode, decode, in-process reduction)
  double comm_model_s = 0;     ///< per worker: modelled time of its communication at the study's bandwidth
  double wall_s = 0;           ///< the run as a whole, all workers sharing this machine's cores
  bool decentralized = false;  ///< a terse::gossip row: no allreduce, each worker mixes with its neighbours
  std::string failure;         ///< why the run stopped early (a terse::error, e.g. divergence); empty if it did not
  std::uint64_t failed_at_step = 0;   ///< the step that raised `failure`
  int left_rank = -1;                 ///< the worker that left mid-training (the *-disconnect rows); -1: none
  std::uint64_t left_after_step = 0;  ///< ...after this many steps
  std::uint64_t agreed_at_round = 0;  ///< the gossip round after which the survivors mixed on their own graph
  double final_accuracy() const { return curve.empty() ? 0.0 : curve.back().accuracy; }
  double best_accuracy() const;
  /// The consensus distance at the last evaluation (0 without one).
  double final_consensus_distance() const { return curve.empty() ? 0.0 : curve.back().consensus_distance; }
};

/// When a run first reached a target accuracy.
struct target_hit {
  std::uint64_t step = 0;
  double bytes_sent = 0;
  double comm_model_s = 0;
  double simulated_s = 0;
};

/// The first evaluation at or above `target`, if any.
std::optional<target_hit> first_reaching(const run_result& run, double target);

/// Mean accuracy of the run at `bytes` sent, interpolated on the curve in
/// log(bytes) (the curve's last accuracy beyond its end, nothing before its
/// first point).
std::optional<double> accuracy_at_bytes(const run_result& run, double bytes);

}  // namespace study

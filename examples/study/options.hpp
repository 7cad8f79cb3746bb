#pragma once
// The study's command line.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fashion_mnist.hpp"
#include "partition.hpp"

namespace study {

enum class progress_mode { automatic, on, off };

/// Where the workers run: threads of this process on terse's local
/// transport, or one per MPI process (under mpirun) on terse's mpi transport.
enum class worker_transport { local, mpi };

struct study_options {
  std::string data_dir = default_data_dir;
  std::string out_dir = "study-results";
  std::string model = "784-256-128-10";
  int workers = 8;
  worker_transport transport = worker_transport::local;
  std::vector<partition_kind> partitions{partition_kind::iid};
  double alpha = 0.1;            ///< Dirichlet concentration of the non-IID split
  double epochs = 4;             ///< passes over the training set (all workers together)
  std::uint64_t steps = 0;       ///< optimizer steps per worker; overrides epochs when set
  std::size_t batch = 32;        ///< per worker and step
  std::uint64_t eval_every = 0;  ///< steps between evaluations; 0: about 24 per run
  std::uint64_t seed = 1;
  double gbps = 10;        ///< modelled network bandwidth per link
  double latency_us = 25;  ///< modelled per-message latency
  bool cosine_lr = true;   ///< --lr-decay cosine (default) or none
  /// Under SMPI: each worker's compute charged as simulated time, forward and
  /// backward at this many flop/s (0: off; study::simulated).
  double declared_flops_per_s = 0;
  std::size_t train_limit = 0;  ///< use the first N training examples (0: all)
  std::size_t test_limit = 0;
  /// Hold out this many training examples and evaluate on them instead of
  /// the test set (0: evaluate on the test set), for tuning knobs.
  std::size_t validation = 0;
  std::vector<std::string> configs;  ///< empty: every configuration
  /// "CONFIG.KEY=VALUE" overrides of a configuration's knobs ("*" for all).
  std::vector<std::string> knob_overrides;
  progress_mode progress = progress_mode::automatic;
  bool list = false;
  bool help = false;
};

/// What --declared-compute gpu stands for: 1 Tflop/s, about what one GPU
/// sustains on this small MLP at batch 32 (far below its peak).
inline constexpr double gpu_declared_flops_per_s = 1e12;

/// Parses argv; throws std::invalid_argument with a message naming the
/// offending argument.
study_options parse_options(int argc, char** argv);

/// The usage text.
std::string usage();

}  // namespace study

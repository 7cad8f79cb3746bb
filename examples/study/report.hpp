#pragma once
// The study's outputs: the table printed at the end, results.csv (one row
// per run), curves.csv (every evaluation) and results.json (both).

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "configuration.hpp"
#include "results.hpp"

namespace study {

/// What the study ran with, echoed into the outputs.
struct study_settings {
  std::string command;
  std::string model;
  std::size_t parameters = 0;
  int workers = 0;
  std::size_t batch = 0;
  std::uint64_t steps = 0;
  double epochs = 0;
  std::uint64_t eval_every = 0;
  std::uint64_t seed = 0;
  double gbps = 0;
  double latency_us = 0;
  double alpha = 0;
  std::size_t train_examples = 0;
  std::size_t test_examples = 0;
  std::string evaluated_on = "test";  ///< or "validation" (--validation)
  double study_wall_s = 0;
};

/// Per-partition figures relative to the dense run (when one ran).
struct comparison {
  const run_result* run = nullptr;
  std::optional<double> target;            ///< dense final accuracy - 0.5 points
  std::optional<double> compression;       ///< dense bytes / these bytes, whole runs
  std::optional<target_hit> hit;           ///< first evaluation at or above the target
  std::optional<double> saving_to_target;  ///< dense bytes to target / these bytes to target
  std::string knobs;
};

/// The runs of one partition compared with its "dense" run.
std::vector<comparison> compare(const std::vector<run_result>& runs, const std::vector<configuration>& configs,
                                const std::string& partition);

/// The table of one partition.
void print_table(std::ostream& out, const std::vector<comparison>& rows, const std::string& partition);

/// Whether the runs carry simulated time (--declared-compute under SMPI).
bool has_simulated_time(const std::vector<run_result>& runs);

/// The time-to-accuracy table of one partition: simulated seconds of
/// training to the target and in all, next to the bytes.
void print_simulated_table(std::ostream& out, const std::vector<comparison>& rows, const std::string& partition);

/// Writes time_to_accuracy.csv (one row per run) and simulated_curves.csv
/// (every evaluation with its simulated time) into `dir`.
void write_simulated_results(const std::string& dir, const std::vector<run_result>& runs,
                             const std::vector<configuration>& configs);

/// Writes results.csv, curves.csv and results.json into `dir`; throws
/// std::runtime_error naming a file that cannot be written.
void write_results(const std::string& dir, const study_settings& settings, const std::vector<run_result>& runs,
                   const std::vector<configuration>& configs);

/// "1.23 MB", "45.6 kB" (powers of 1000).
std::string human_bytes(double bytes);

}  // namespace study

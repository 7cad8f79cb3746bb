#pragma once
// Test accuracy against bytes sent per worker, one line per configuration,
// as an SVG written by hand (log-scale x axis, legend, axis labels, the
// target accuracy as a dashed line) that a browser opens; and the consensus
// distance of the decentralized (gossip) runs against the step.

#include <optional>
#include <string>
#include <vector>

#include "results.hpp"

namespace study {

/// Writes the runs of `partition` to `path`; throws std::runtime_error if it cannot.
void plot_accuracy_vs_bytes(const std::string& path, const std::string& title, const std::vector<run_result>& runs,
                            const std::string& partition, std::optional<double> target);

/// Test accuracy against simulated seconds of training (--declared-compute
/// under SMPI), log-scale x axis; throws std::runtime_error if it cannot.
void plot_accuracy_vs_simulated_time(const std::string& path, const std::string& title,
                                     const std::vector<run_result>& runs, const std::string& partition,
                                     std::optional<double> target);

/// Writes the consensus distance (1/W) sum_i ||x_i - xbar||^2 of the
/// decentralized runs of `partition` against the step (log-scale y axis) to
/// `path`; throws std::runtime_error if it cannot.
void plot_consensus_vs_step(const std::string& path, const std::string& title, const std::vector<run_result>& runs,
                            const std::string& partition);

}  // namespace study

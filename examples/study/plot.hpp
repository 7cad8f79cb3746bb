#pragma once
// Test accuracy against bytes sent per worker, one line per configuration,
// as an SVG written by hand (log-scale x axis, legend, axis labels, the
// target accuracy as a dashed line) that a browser opens.

#include <optional>
#include <string>
#include <vector>

#include "results.hpp"

namespace study {

/// Writes the runs of `partition` to `path`; throws std::runtime_error if it cannot.
void plot_accuracy_vs_bytes(const std::string& path, const std::string& title, const std::vector<run_result>& runs,
                            const std::string& partition, std::optional<double> target);

}  // namespace study

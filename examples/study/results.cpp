#include "results.hpp"

#include <algorithm>
#include <cmath>

namespace study {

double run_result::best_accuracy() const
{
  double best = 0;
  for (const curve_point& p : curve) {
    best = std::max(best, p.accuracy);
  }
  return best;
}

std::optional<target_hit> first_reaching(const run_result& run, double target)
{
  for (const curve_point& p : run.curve) {
    if (p.accuracy >= target) {
      return target_hit{p.step, p.bytes_sent, p.comm_model_s, p.simulated_s};
    }
  }
  return std::nullopt;
}

std::optional<double> accuracy_at_bytes(const run_result& run, double bytes)
{
  const std::vector<curve_point>& c = run.curve;
  if (c.empty() || bytes < c.front().bytes_sent) {
    return std::nullopt;
  }
  for (std::size_t i = 1; i < c.size(); ++i) {
    if (bytes <= c[i].bytes_sent) {
      const double x0 = std::log(std::max(c[i - 1].bytes_sent, 1.0));
      const double x1 = std::log(std::max(c[i].bytes_sent, 1.0));
      const double t = x1 > x0 ? (std::log(std::max(bytes, 1.0)) - x0) / (x1 - x0) : 1.0;
      return c[i - 1].accuracy + t * (c[i].accuracy - c[i - 1].accuracy);
    }
  }
  return c.back().accuracy;
}

}  // namespace study

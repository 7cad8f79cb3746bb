#pragma once
// One line on stderr, rewritten in place, saying how far the study is.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace study {

class progress {
 public:
  /// @param total_steps optimizer steps of the whole study (every run)
  progress(std::uint64_t total_steps, bool enabled);

  /// Rank 0 of the current run after each step; redraws at most ten times a second.
  void step(const std::string& run_name, std::uint64_t step, std::uint64_t run_steps, double last_accuracy);
  /// Ends the line (call once, after the last run).
  void finish();

 private:
  void draw(const std::string& run_name, std::uint64_t step, std::uint64_t run_steps, double last_accuracy);

  std::uint64_t total_;
  std::uint64_t done_ = 0;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex mutex_;
};

}  // namespace study

#include "progress.hpp"

#include <algorithm>
#include <cstdio>

namespace study {

progress::progress(std::uint64_t total_steps, bool enabled)
    : total_(std::max<std::uint64_t>(total_steps, 1)),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_)
{
}

void progress::step(const std::string& run_name, std::uint64_t step, std::uint64_t run_steps, double last_accuracy)
{
  const std::lock_guard lock(mutex_);
  ++done_;
  if (!enabled_) {
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (step + 1 < run_steps && now - last_draw_ < std::chrono::milliseconds(100)) {
    return;
  }
  last_draw_ = now;
  draw(run_name, step, run_steps, last_accuracy);
}

void progress::draw(const std::string& run_name, std::uint64_t step, std::uint64_t run_steps, double last_accuracy)
{
  constexpr int width = 24;
  const double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
  const int filled = static_cast<int>(fraction * width);
  char bar[width + 1];
  for (int i = 0; i < width; ++i) {
    bar[i] = i < filled ? '#' : '-';
  }
  bar[width] = '\0';
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0;
  std::fprintf(stderr, "\r[%s] %3.0f%%  %-26.26s step %5llu/%-5llu acc %5.1f%%  %4.0fs, ~%4.0fs left \033[K", bar,
               fraction * 100, run_name.c_str(), static_cast<unsigned long long>(step + 1),
               static_cast<unsigned long long>(run_steps), last_accuracy * 100, elapsed, eta);
  std::fflush(stderr);
  drawn_ = true;
}

void progress::finish()
{
  const std::lock_guard lock(mutex_);
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\n");
  }
}

}  // namespace study

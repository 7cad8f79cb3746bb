#include "departure.hpp"

#include <terse/core/verbs.hpp>

#include <chrono>
#include <cmath>
#include <sstream>
#include <string>
#include <thread>

namespace study {
namespace {

std::string number(double x)
{
  std::ostringstream text;
  text << x;  // 3, 0.5: as --set wrote them
  return text.str();
}

}  // namespace

void schedule_departure(const configuration& config, const run_context& ctx, departure& out)
{
  if (!config.has_knob("leave_rank")) {
    return;
  }
  const double rank = config.knob("leave_rank");
  const double at = config.knob("leave_at");
  const auto after = static_cast<std::uint64_t>(std::floor(at * static_cast<double>(ctx.steps)));
  TERSE_CHECK(
      rank >= 0 && rank < ctx.workers && rank == std::floor(rank), terse::errc::invalid_argument,
      config.name + ": leave_rank=" + number(rank) + " is not a rank of " + std::to_string(ctx.workers) + " workers");
  TERSE_CHECK(after >= 1 && after < ctx.steps, terse::errc::invalid_argument,
              config.name + ": leave_at=" + number(at) + " leaves after step " + std::to_string(after) +
                  ", not within the run's " + std::to_string(ctx.steps) + " steps");
  TERSE_CHECK(ctx.mpi == nullptr, terse::errc::unsupported,
              config.name +
                  ": a worker leaving needs the local transport (failure_scope::peer); not with "
                  "--transport mpi");
  out.rank = static_cast<int>(rank);
  out.after_step = after;
}

void wait_until_gone(const departure& leaving)
{
  const auto deadline = std::chrono::steady_clock::now() + terse::transport_options{}.timeout;
  while (!leaving.gone.load()) {
    TERSE_CHECK(
        std::chrono::steady_clock::now() < deadline, terse::errc::timeout,
        "worker " + std::to_string(leaving.rank) + " did not leave after step " + std::to_string(leaving.after_step));
    std::this_thread::yield();
  }
}

std::vector<int> survivors_of(int workers, int rank)
{
  std::vector<int> members;
  for (int r = 0; r < workers; ++r) {
    if (r != rank) {
      members.push_back(r);
    }
  }
  return members;
}

}  // namespace study

#pragma once
// The study on a simulated cluster (SimGrid SMPI, docs/simulation.md):
// --declared-compute charges each worker's compute as a declared amount of
// simulated time, and MPI_Wtime (SMPI's clock) times the run, so the study
// reports how long a configuration takes to reach its target accuracy on the
// simulated network. Run with --cfg=smpi/simulate-computation:no: the CPU
// time this machine spends is then not charged, and two identical runs give
// identical simulated times.

#include <terse/compress/cast.hpp>
#include <terse/compress/identity.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/cost/model.hpp>
#include <terse/feedback/none.hpp>

#include <cstddef>
#include <string>
#include <type_traits>

#include "fashion_mnist.hpp"

namespace study {

template <class Compressor, class Feedback, class Schedule>
struct policies;

namespace simulated {

/// Whether this terse_study was compiled with smpicxx (SMPI's mpi.h).
bool available() noexcept;

/// Seconds on SMPI's simulated clock of this rank (MPI_Wtime); 0 elsewhere.
double now();

/// Advances this rank's simulated clock by `seconds` of declared compute
/// (smpi_execute_benched: the host executes seconds x its own speed in
/// flops). Does nothing outside SMPI.
void charge(double seconds);

/// A rank's simulated training time: MPI_Wtime since it was made, less the
/// pauses (evaluations). Reads 0 when off (no --declared-compute). One
/// MPI_Wtime per pause and per resume: SMPI charges each call a little
/// simulated time (smpi/wtime), so the number of calls is part of the result.
class training_clock {
 public:
  explicit training_clock(bool on) : on_(on), start_(on ? now() : 0.0) {}

  /// Stops the clock and returns the training time so far.
  double pause()
  {
    paused_at_ = on_ ? now() : 0.0;
    return on_ ? paused_at_ - start_ - excluded_ : 0.0;
  }
  void resume()
  {
    if (on_) {
      excluded_ += now() - paused_at_;
    }
  }

 private:
  bool on_;
  double start_;
  double paused_at_ = 0;
  double excluded_ = 0;
};

/// Fashion-MNIST as load_fashion_mnist reads it, loaded once per process
/// and shared by every rank that asks for the same files and limits. Under
/// SMPI every rank is a thread of one process: 64 ranks each holding the
/// 70,000 images as floats would need 14 GB, one shared copy needs 220 MB.
/// Read-only once loaded; never freed (it lives as long as the simulation).
const fashion_mnist& shared_fashion_mnist(const std::string& dir, std::size_t train_limit, std::size_t test_limit,
                                          std::size_t validation);

/// The declared flops of one worker's forward and backward pass: the
/// usual 6 x parameters x batch (2 for the forward products, 4 for the
/// backward ones).
inline double step_flops(std::size_t parameters, std::size_t batch)
{
  return 6.0 * static_cast<double>(parameters) * static_cast<double>(batch);
}

/// The speeds charged for a codec the cost model has no measurement of
/// (sign, QSGD, PowerSGD, DGC, ...): uniform<4>'s (terse/cost/codec_speed.hpp),
/// a codec of the same kind of local work (one encode pass, one decode).
inline terse::cost::codec_speed unmeasured_codec_speed()
{
  return *terse::cost::measured_speed(terse::compress::uniform<4>{});
}

/// The declared local work of one exchange of an allreduce over `n` floats on
/// `world` ranks: the cost model's compute term (encode, fold or decode,
/// requantize, commit copy; terse/cost/model.hpp) at the host codec speeds
/// measured in terse/cost/codec_speed.hpp, one CPU core of the calibration
/// machine. A codec without a measurement is a plain pass
/// over the bucket at unmeasured_codec_speed(): 4n bytes encoded (fused with
/// the residual when it has feedback), decoded, and copied.
template <class Compressor, class Feedback, class Schedule>
double codec_seconds(const policies<Compressor, Feedback, Schedule>& made, int world, std::size_t n)
{
  constexpr bool residual = !std::is_same_v<Feedback, terse::feedback::none>;
  if (terse::cost::measured_speed(made.compressor)) {
    const terse::cost::step_options options{.compute = true, .residual = residual, .sparse = made.sparse};
    const terse::cost::step_plan plan = terse::cost::plan(world, n, made.compressor, options);
    double seconds = plan.compute_after_s;
    for (const terse::cost::phase& p : plan.phases) {
      seconds += p.compute_s;
    }
    return seconds;
  } else {
    const terse::cost::codec_speed s = unmeasured_codec_speed();
    const double bytes = 4.0 * static_cast<double>(n);
    return bytes / (residual ? s.encode_residual_bytes_per_s : s.encode_bytes_per_s) + bytes / s.decode_bytes_per_s +
           bytes / s.memory_bytes_per_s;
  }
}

/// A gossip's mixing is not charged (the study's SMPI runs are allreduce rows).
template <class Other>
double codec_seconds(const Other&, int, std::size_t)
{
  return 0.0;
}

}  // namespace simulated
}  // namespace study

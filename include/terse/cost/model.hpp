#pragma once
/// @file
/// The cost model: how long one step of `terse::allreduce` takes on a
/// cluster, dense or with a codec, for a bucket of n floats and W ranks.
/// "Will compression make my step faster on my cluster?"
///
/// @code
/// using namespace terse;
/// const cost::cluster mine = cost::cluster::flat(/*gigabits_per_s=*/10.0, /*latency_s=*/30e-6);
/// const cost::comparison c = cost::compare(mine, /*world=*/64, /*n=*/1 << 22, compress::uniform<4>{},
///                                          cost::step_options{.compute = true, .residual = true});
/// std::cout << c.dense << '\n' << c.compressed << "\nspeedup " << c.speedup() << '\n';
/// @endcode
///
/// A step is planned (step_plan.hpp: the exact messages terse's algorithm
/// posts for the codec's aggregation kind, and its local work) and then
/// priced phase by phase (detail/pricing.hpp): for each phase, the local
/// work before it, the network time of its grouped exchange, and the time
/// to notice it finished; the step is their sum plus the work after the
/// last phase. Every rank is priced and each phase takes its slowest rank:
/// O(W^2) work per phase (0.1 s at W = 1024, 1.5 s at W = 4096 at -O2).
///
/// With plain alpha-beta (cluster::flat, cluster::from) the dense step of
/// a bucket of N = 4n bytes, n a multiple of W, is
///
///     2 alpha + 2 (W - 1)/W N beta                 (two grouped exchanges)
///
/// and each phase equals what the `simulated_network` decorator charges
/// for the same exchange. The SMPI presets (cluster::cluster_10g, ...) add
/// SimGrid's size factors, its cross-traffic and terse's polling; the
/// validation against SMPI is in docs/simulation.md.

#include <terse/compress/identity.hpp>
#include <terse/core/error.hpp>
#include <terse/cost/cluster.hpp>
#include <terse/cost/codec_speed.hpp>
#include <terse/cost/detail/plan_paths.hpp>
#include <terse/cost/detail/pricing.hpp>
#include <terse/cost/step_plan.hpp>

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string_view>
#include <vector>

namespace terse::cost {

/// One phase of a prediction, for its slowest rank.
struct phase_cost {
  std::string_view name;
  double compute_s = 0.0;  ///< local work before the phase is posted
  double network_s = 0.0;  ///< latency plus the link serialising the bytes
  double polling_s = 0.0;  ///< testing requests until all are seen complete
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;

  double seconds() const noexcept { return compute_s + network_s + polling_s; }
};

/// The predicted time of one step.
struct prediction {
  std::vector<phase_cost> phases{};
  double compute_after_s = 0.0;

  double seconds() const noexcept
  {
    double total = compute_after_s;
    for (const phase_cost& p : phases) {
      total += p.seconds();
    }
    return total;
  }
  double network_s() const noexcept
  {
    double total = 0.0;
    for (const phase_cost& p : phases) {
      total += p.network_s;
    }
    return total;
  }
  double polling_s() const noexcept
  {
    double total = 0.0;
    for (const phase_cost& p : phases) {
      total += p.polling_s;
    }
    return total;
  }
  double compute_s() const noexcept
  {
    double total = compute_after_s;
    for (const phase_cost& p : phases) {
      total += p.compute_s;
    }
    return total;
  }
};

inline std::ostream& operator<<(std::ostream& out, const prediction& p)
{
  out << "prediction{" << p.seconds() * 1e3 << " ms:";
  for (const phase_cost& ph : p.phases) {
    out << ' ' << ph.name << " (compute " << ph.compute_s * 1e3 << ", network " << ph.network_s * 1e3 << ", polling "
        << ph.polling_s * 1e3 << " ms; " << ph.bytes_sent << " B sent)";
  }
  return out << " then compute " << p.compute_after_s * 1e3 << " ms}";
}

/// What one step of `terse::allreduce` with `codec` sends and computes on
/// `world` ranks for a bucket of `n` floats (step_plan.hpp).
/// `compress::identity{}` plans the dense step.
template <class Codec>
step_plan plan(int world, std::size_t n, const Codec& codec, const step_options& options = {})
{
  codec_speed speed{};
  if (options.speed) {
    speed = *options.speed;
  } else if (const auto known = measured_speed(codec)) {
    speed = *known;
  } else {
    TERSE_EXPECTS(!options.compute,
                  "cost::plan: this codec's speed was not measured (codec_speed.hpp); set "
                  "step_options::speed, or step_options::compute = false for network only");
  }
  return detail::plan_step(world, n, codec, options, speed);
}

/// Prices `step` on `c` (file comment).
inline prediction price(const cluster& c, const step_plan& step)
{
  c.validate();
  prediction result;
  result.compute_after_s = step.compute_after_s;
  for (const phase& p : step.phases) {
    TERSE_EXPECTS(p.world() == step.world, "cost::price: a phase must have one size per rank of the plan's world");
    phase_cost slowest{.name = p.name, .compute_s = p.compute_s};
    double worst = -1.0;
    for (int rank = 0; rank < step.world; ++rank) {
      const double network = detail::network_seconds(c, p, rank);
      const double polling = detail::polling_seconds(c, p, rank, network);
      if (network + polling > worst) {
        worst = network + polling;
        slowest.network_s = network;
        slowest.polling_s = polling;
        slowest.bytes_sent = p.sent_by(rank);
        slowest.bytes_received = p.received_by(rank);
      }
    }
    result.phases.push_back(slowest);
  }
  return result;
}

/// One step with `codec` on `c`: price(c, plan(world, n, codec, options)).
template <class Codec>
prediction predict(const cluster& c, int world, std::size_t n, const Codec& codec, const step_options& options = {})
{
  return price(c, plan(world, n, codec, options));
}

/// One dense step on `c` (no codec; `options.residual` is ignored).
inline prediction predict_dense(const cluster& c, int world, std::size_t n, const step_options& options = {})
{
  step_options dense = options;
  dense.residual = false;
  return predict(c, world, n, compress::identity{}, dense);
}

/// A dense step and a compressed one on the same cluster.
struct comparison {
  prediction dense;
  prediction compressed;

  /// Above 1 when compression makes the step faster.
  double speedup() const noexcept { return dense.seconds() / compressed.seconds(); }
};

/// Both steps. With `options.compute`, the dense step's fold and copy run at
/// the measured memory speed unless `options.speed` is set.
template <class Codec>
comparison compare(const cluster& c, int world, std::size_t n, const Codec& codec, const step_options& options = {})
{
  step_options dense = options;
  if (options.speed) {
    dense.speed = codec_speed{.memory_bytes_per_s = options.speed->memory_bytes_per_s};
  }
  return comparison{predict_dense(c, world, n, dense), predict(c, world, n, codec, options)};
}

}  // namespace terse::cost

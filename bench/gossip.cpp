// One gossip round against one allreduce step on a modelled network.
//
// For W in-process ranks, one step of each variant runs on rank 0's stack
// local -> metered -> simulated_network (10 Gb/s) -> simulated_network
// (1 Gb/s), both networks with 25 us per message. The counters are rank 0's
// metered bytes and the modelled time of exactly the verbs it made, beside
// the dense allreduce (the collective terse::allreduce, whose reduce-scatter
// and allgather are grouped exchanges) of the same vector, and the
// transport's ring allreduce verb.
//
// Every step is also priced by the alpha-beta formula t = L alpha + S beta
// (L latencies, S bytes serialised on rank 0's link; formula() below). Rows
// at a measured size check it against the metered bytes (exactly) and the
// modelled time (within 1 %) and fail with SkipWithError when they differ.
// Rows named `by_formula` measure and check at 2^16 floats, then report the
// formula at their own size: 2^22 floats, and a 25M-float model, which 64
// in-process ranks could not hold.
//
//   bench_gossip --benchmark_format=json
#include <terse/collective/allreduce.hpp>
#include <terse/collective/gossip.hpp>
#include <terse/collective/mixers.hpp>
#include <terse/compress/identity.hpp>
#include <terse/compress/topk.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/topology.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

constexpr std::array<double, 2> gigabits{10.0, 1.0};
constexpr double latency_s = 25e-6;
constexpr std::size_t value_bytes = sizeof(float);
constexpr std::size_t gossip_header_bytes = 32;                  // every gossip message
constexpr std::size_t allreduce_frame_header = 9;                // every compressed allreduce payload
constexpr std::size_t measured_elements = std::size_t{1} << 16;  // where by_formula rows check

enum class variant {
  allreduce,            // terse::allreduce, compress::identity
  ring_allreduce_verb,  // the transport's allreduce verb
  topk_allreduce,       // terse::allreduce, top-1 % with residual feedback
  dpsgd_ring,
  dpsgd_exponential,
  dpsgd_one_peer_exponential,
  push_sum_one_peer_exponential,
  choco_topk_ring,
};

terse::compress::topk top_one_percent()
{
  return terse::compress::topk{.density = 0.01f};
}

/// What one step costs rank 0: the bytes it sends, and the alpha-beta time
/// t = latencies * alpha + serialised_bytes * beta.
struct alpha_beta {
  std::uint64_t bytes_sent = 0;
  double latencies = 0;
  double serialised_bytes = 0;

  double seconds(double gigabits_per_s) const
  {
    return latencies * latency_s + serialised_bytes / (gigabits_per_s * 1e9 / 8.0);
  }
};

/// The formula for one step of `v` over `count` floats on rank 0 of `world`
/// ranks, from the cost model (transport/detail/decorator_cost.hpp): a
/// grouped exchange pays one latency and serialises the larger of its sent
/// and received bytes; the ring allreduce verb pays 2(W-1) latencies.
alpha_beta formula(variant v, int world, std::size_t count)
{
  const auto w = static_cast<std::uint64_t>(world);
  const std::uint64_t n = count;
  const std::uint64_t own = (n + w - 1) / w;  // rank 0's block: the first n % W blocks are one longer
  const std::uint64_t others = n - own;
  // A gossip round: `messages` frames of header + payload room, all posted at once.
  const auto gossip = [](std::uint64_t messages, std::uint64_t payload) {
    const std::uint64_t frame = gossip_header_bytes + payload;
    return alpha_beta{messages * frame, 1.0, static_cast<double>(messages * frame)};
  };
  const std::uint64_t ring_degree = world == 2 ? 1 : 2;
  const auto exponential_degree = static_cast<std::uint64_t>(std::bit_width(static_cast<unsigned>(world - 1)));
  switch (v) {
    case variant::allreduce: {
      // Reduce-scatter (other ranks' blocks out, W-1 copies of ours in),
      // then allgather (ours out W-1 times, the others' blocks in).
      const std::uint64_t out = others * value_bytes;
      const std::uint64_t in = (w - 1) * own * value_bytes;
      return {out + in, 2.0, 2.0 * static_cast<double>(std::max(out, in))};
    }
    case variant::ring_allreduce_verb: {
      const double fraction = 2.0 * static_cast<double>(w - 1) / static_cast<double>(w);
      return {2 * others * value_bytes, 2.0 * static_cast<double>(w - 1),
              fraction * static_cast<double>(n * value_bytes)};
    }
    case variant::topk_allreduce: {
      // Gather-only: an 8-byte size to every rank, then every payload to every rank.
      const std::uint64_t frame = allreduce_frame_header + top_one_percent().max_encoded_bytes(count);
      const std::uint64_t bytes = (w - 1) * (sizeof(std::uint64_t) + frame);
      return {bytes, 2.0, static_cast<double>(bytes)};
    }
    case variant::dpsgd_ring: return gossip(ring_degree, n * value_bytes);
    case variant::dpsgd_exponential: return gossip(exponential_degree, n * value_bytes);
    case variant::dpsgd_one_peer_exponential: return gossip(1, n * value_bytes);
    case variant::push_sum_one_peer_exponential: return gossip(1, (n + 1) * value_bytes);
    case variant::choco_topk_ring: return gossip(ring_degree, top_one_percent().max_encoded_bytes(count));
  }
  return {};
}

struct measured {
  std::uint64_t bytes_sent = 0;
  std::array<double, gigabits.size()> seconds{};  // modelled, per network
};

/// Runs the step `make_step(net, count)` returns on W ranks twice (the
/// first grows scratch and state) and reports rank 0's second step.
template <class MakeStep>
measured measure(int world, std::size_t count, MakeStep make_step)
{
  measured result;
  terse::run_local(world, [&](terse::local_transport& local) {
    terse::metered meter(local);
    terse::simulated_network fast(meter, terse::network_model::gbps(gigabits[0], latency_s));
    terse::simulated_network slow(fast, terse::network_model::gbps(gigabits[1], latency_s));
    auto step = make_step(slow, count);
    std::vector<float> values(count);
    for (std::size_t i = 0; i < count; ++i) {
      values[i] = 1e-3f * static_cast<float>((i * 7 + static_cast<std::size_t>(local.rank())) % 19);
    }
    step(terse::host_span<float>(values));
    meter.reset();
    fast.reset();
    slow.reset();
    step(terse::host_span<float>(values));
    if (local.rank() == 0) {
      result = {meter.counts().total().bytes_sent, {fast.modelled_seconds(), slow.modelled_seconds()}};
    }
  });
  return result;
}

/// topology::ring with its default weighting, as a plain function of W.
terse::topology::graph ring(int world)
{
  return terse::topology::ring(world);
}

template <class Mixer>
measured measure_gossip(int world, std::size_t count, terse::topology::graph (*topology)(int), Mixer mixer)
{
  return measure(world, count, [&](auto& net, std::size_t n) {
    return [mix = terse::gossip(net, n, topology(net.size()), terse::gossip_options{.check_plan = false}, mixer)](
               terse::host_span<float> x) mutable { mix.mix(x); };
  });
}

measured run_variant(variant v, int world, std::size_t count)
{
  using terse::topology::one_peer_exponential;
  switch (v) {
    case variant::allreduce:
      return measure(world, count, [](auto& net, std::size_t n) {
        return [sync = terse::allreduce(net, terse::layout::single(n))](terse::host_span<float> x) mutable {
          sync.average(x);
        };
      });
    case variant::ring_allreduce_verb:
      return measure(world, count, [](auto& net, std::size_t) {
        return [&net](terse::host_span<float> x) { net.allreduce(x, terse::reduce_op::average); };
      });
    case variant::topk_allreduce:
      return measure(world, count, [](auto& net, std::size_t n) {
        return [sync = terse::allreduce(net, terse::layout::single(n), top_one_percent(), terse::feedback::residual{})](
                   terse::host_span<float> x) mutable { sync.average(x); };
      });
    case variant::dpsgd_ring: return measure_gossip(world, count, ring, terse::mixer::average{});
    case variant::dpsgd_exponential:
      return measure_gossip(world, count, terse::topology::exponential, terse::mixer::average{});
    case variant::dpsgd_one_peer_exponential:
      return measure_gossip(world, count, one_peer_exponential, terse::mixer::average{});
    case variant::push_sum_one_peer_exponential:
      return measure_gossip(world, count, one_peer_exponential, terse::mixer::push_sum{});
    case variant::choco_topk_ring:
      return measure_gossip(world, count, ring, terse::mixer::choco{top_one_percent(), 0.3});
  }
  return {};
}

/// Modelled figures are deterministic, so each (variant, W, n) runs once per
/// process; the baselines are shared by every row of the same W and n.
const measured& measured_step(variant v, int world, std::size_t count)
{
  static std::map<std::tuple<variant, int, std::size_t>, measured> cache;
  const auto key = std::make_tuple(v, world, count);
  auto found = cache.find(key);
  if (found == cache.end()) {
    found = cache.emplace(key, run_variant(v, world, count)).first;
  }
  return found->second;
}

/// Empty when the measured step matches the formula (bytes exactly, time within 1 %).
std::string disagreement(const char* what, const measured& m, const alpha_beta& f)
{
  if (m.bytes_sent != f.bytes_sent) {
    return std::string(what) + ": metered " + std::to_string(m.bytes_sent) + " B, formula " +
           std::to_string(f.bytes_sent) + " B";
  }
  for (std::size_t g = 0; g < gigabits.size(); ++g) {
    const double predicted = f.seconds(gigabits[g]);
    if (std::abs(m.seconds[g] - predicted) > 0.01 * predicted) {
      return std::string(what) + ": modelled " + std::to_string(m.seconds[g] * 1e6) + " us at " +
             std::to_string(gigabits[g]) + " Gb/s, formula " + std::to_string(predicted * 1e6) + " us";
    }
  }
  return {};
}

/// Rank 0's bytes and seconds at the row's size: measured, or by the formula.
measured at_size(variant v, int world, std::size_t count, bool by_formula)
{
  if (!by_formula) {
    return measured_step(v, world, count);
  }
  const alpha_beta f = formula(v, world, count);
  return {f.bytes_sent, {f.seconds(gigabits[0]), f.seconds(gigabits[1])}};
}

void compare(benchmark::State& state, variant v, bool by_formula)
{
  const int world = static_cast<int>(state.range(0));
  const auto count = static_cast<std::size_t>(state.range(1));
  const std::size_t checked = by_formula ? measured_elements : count;
  measured ours, dense, ring;
  for (auto _ : state) {
    for (const auto& [what, which] : {std::pair{"variant", v}, std::pair{"allreduce", variant::allreduce},
                                      std::pair{"ring allreduce verb", variant::ring_allreduce_verb}}) {
      const std::string off = disagreement(what, measured_step(which, world, checked), formula(which, world, checked));
      if (!off.empty()) {
        state.SkipWithError(off.c_str());
        return;
      }
    }
    ours = at_size(v, world, count, by_formula);
    dense = at_size(variant::allreduce, world, count, by_formula);
    ring = at_size(variant::ring_allreduce_verb, world, count, by_formula);
    state.SetIterationTime(ours.seconds[0]);
  }
  const alpha_beta f = formula(v, world, count);
  state.counters["W"] = world;
  state.counters["n"] = static_cast<double>(count);
  state.counters["by_formula"] = by_formula ? 1 : 0;
  state.counters["bytes_per_rank"] = static_cast<double>(ours.bytes_sent);
  state.counters["allreduce_bytes_per_rank"] = static_cast<double>(dense.bytes_sent);
  state.counters["bytes_ratio_vs_allreduce"] =
      static_cast<double>(ours.bytes_sent) / static_cast<double>(dense.bytes_sent);
  for (std::size_t g = 0; g < gigabits.size(); ++g) {
    const std::string net = std::to_string(static_cast<int>(gigabits[g])) + "g";
    state.counters["ms_" + net] = ours.seconds[g] * 1e3;
    state.counters["allreduce_ms_" + net] = dense.seconds[g] * 1e3;
    state.counters["ring_allreduce_ms_" + net] = ring.seconds[g] * 1e3;
    state.counters["time_ratio_vs_allreduce_" + net] = ours.seconds[g] / dense.seconds[g];
    state.counters["time_ratio_vs_ring_allreduce_" + net] = ours.seconds[g] / ring.seconds[g];
    state.counters["latency_share_" + net] = f.latencies * latency_s / f.seconds(gigabits[g]);
  }
}

void add(const char* name, variant v)
{
  const std::vector<std::int64_t> worlds{8, 16, 32, 64};
  auto* measured_rows = benchmark::RegisterBenchmark(name, [v](benchmark::State& state) { compare(state, v, false); });
  auto* formula_rows = benchmark::RegisterBenchmark((std::string(name) + "/by_formula").c_str(),
                                                    [v](benchmark::State& state) { compare(state, v, true); });
  for (const std::int64_t world : worlds) {
    measured_rows->Args({world, std::int64_t{1} << 10})->Args({world, std::int64_t{measured_elements}});
    formula_rows->Args({world, std::int64_t{1} << 22})->Args({world, 25'000'000});
  }
  for (auto* rows : {measured_rows, formula_rows}) {
    rows->ArgNames({"W", "n"})->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv)
{
  add("gossip/allreduce", variant::allreduce);
  add("gossip/ring_allreduce_verb", variant::ring_allreduce_verb);
  add("gossip/topk_allreduce", variant::topk_allreduce);
  add("gossip/dpsgd_ring", variant::dpsgd_ring);
  add("gossip/dpsgd_exponential", variant::dpsgd_exponential);
  add("gossip/dpsgd_one_peer_exponential", variant::dpsgd_one_peer_exponential);
  add("gossip/push_sum_one_peer_exponential", variant::push_sum_one_peer_exponential);
  add("gossip/choco_topk_ring", variant::choco_topk_ring);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

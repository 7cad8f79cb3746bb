// Decentralized configurations: no allreduce at all. Each worker steps on
// its own gradient, then a terse::gossip mixes its parameters with its
// neighbours' on a topology (D-PSGD, SGP), or sends them a compressed
// correction of its public copy (CHOCO-SGD).
#include <terse/collective/mixers.hpp>
#include <terse/compress/sign.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/topology/planner.hpp>
#include <terse/topology/static_graphs.hpp>
#include <terse/topology/time_varying.hpp>

#include "configuration.hpp"
#include "trainer.hpp"

namespace study {
namespace {

using namespace terse;

auto dpsgd_ring(const configuration&, const run_context& ctx)
{
  return gossip_policies<mixer::average>{topology::ring(ctx.workers), {}};
}

auto dpsgd_exponential(const configuration&, const run_context& ctx)
{
  return gossip_policies<mixer::average>{topology::exponential(ctx.workers), {}};
}

auto dpsgd_one_peer(const configuration&, const run_context& ctx)
{
  return gossip_policies<mixer::average>{topology::one_peer_exponential(ctx.workers), {}};
}

auto sgp_one_peer(const configuration&, const run_context& ctx)
{
  return gossip_policies<mixer::push_sum>{topology::one_peer_exponential(ctx.workers), {}};
}

// The same, rerouting around the worker that leaves (leave_rank, leave_at:
// trainer.hpp); the survivors agree on who is alive every membership_every rounds.
auto sgp_one_peer_rerouted(const configuration& c, const run_context& ctx)
{
  return rerouted_policies<mixer::push_sum>{
      topology::one_peer_exponential(ctx.workers), {}, static_cast<std::uint64_t>(c.knob("membership_every"))};
}

template <class Codec>
gossip_policies<mixer::choco<Codec>> choco_ring(const configuration& c, const run_context& ctx, Codec codec)
{
  return {topology::ring(ctx.workers), mixer::choco<Codec>{.codec = std::move(codec), .gamma = c.knob("gamma")}};
}

auto choco_topk(const configuration& c, const run_context& ctx)
{
  return choco_ring(c, ctx, compress::topk{.density = static_cast<float>(c.knob("density"))});
}

auto choco_sign(const configuration& c, const run_context& ctx)
{
  return choco_ring(c, ctx, compress::sign{});
}

auto choco_4bit(const configuration& c, const run_context& ctx)
{
  return choco_ring(c, ctx, compress::uniform<4>{});
}

// Ranks W/2 - 1 and W - 1 on 1 Gb/s NICs (the slow_gbps knob, trainer.cpp):
// the static ring, the ring re-planned from the measured links, clusters.
auto planned_ring(const configuration& c, const run_context& ctx)
{
  return replanned_policies<mixer::average>{
      .initial = topology::ring(ctx.workers),
      .mixer = {},
      .every = static_cast<std::uint64_t>(c.knob("replan_every")),
      .options = replan_options{.planner = {.degree = static_cast<std::size_t>(c.knob("degree"))}, .seed = ctx.seed}};
}

auto clustered(const configuration& c, const run_context&)
{
  return clustered_policies{.clusters = static_cast<int>(c.knob("clusters")),
                            .options = {.outer_every = static_cast<std::uint64_t>(c.knob("outer_every"))}};
}

}  // namespace

// Knobs chosen on a 6,000-example validation split (docs/results.md):
// lr 0.1 beat 0.05 for every uncompressed gossip row; gamma is each CHOCO
// codec's best (top-k: 0.1, within 0.2 points of 0.2 at a 40x smaller
// consensus distance; 0.5 diverged).
void add_gossip_configurations(std::vector<configuration>& list)
{
  list.push_back(make_configuration("dpsgd-ring", "D-PSGD: fp32 models averaged with the 2 ring neighbours, every step",
                                    {{"lr", 0.1}, {"momentum", 0.9}}, dpsgd_ring));
  list.push_back(make_configuration("dpsgd-exp",
                                    "D-PSGD on the static exponential graph (3 peers at W = 8), every step",
                                    {{"lr", 0.1}, {"momentum", 0.9}}, dpsgd_exponential));
  list.push_back(make_configuration("dpsgd-1peer-exp",
                                    "D-PSGD on the one-peer exponential graph (1 peer a step, 2^(t mod 3) away)",
                                    {{"lr", 0.1}, {"momentum", 0.9}}, dpsgd_one_peer));
  list.push_back(make_configuration("sgp-1peer-exp", "SGP: push-sum (z, w) on the one-peer exponential graph",
                                    {{"lr", 0.1}, {"momentum", 0.9}}, sgp_one_peer));
  list.push_back(make_configuration(
      "sgp-1peer-exp-disconnect",
      "SGP on the one-peer exponential graph; worker leave_rank leaves after leave_at of the steps, the rest reroute",
      {{"lr", 0.1}, {"momentum", 0.9}, {"leave_rank", 3}, {"leave_at", 0.5}, {"membership_every", 8}},
      sgp_one_peer_rerouted));
  list.push_back(make_configuration("choco-ring-topk1%",
                                    "CHOCO-SGD on the ring: top-k of x - x^ to each neighbour, consensus step gamma",
                                    {{"lr", 0.05}, {"momentum", 0.9}, {"gamma", 0.1}, {"density", 0.01}}, choco_topk));
  list.push_back(make_configuration(
      "choco-ring-sign", "CHOCO-SGD on the ring: scaled signs (1 bit + a scale per 512) of x - x^, step gamma",
      {{"lr", 0.05}, {"momentum", 0.9}, {"gamma", 0.4}}, choco_sign));
  list.push_back(make_configuration(
      "choco-ring-4bit", "CHOCO-SGD on the ring: 4-bit min-max quantized x - x^ (scaled by 1/(1+omega)), step gamma",
      {{"lr", 0.05}, {"momentum", 0.9}, {"gamma", 1.0}}, choco_4bit));
  list.push_back(make_configuration("dpsgd-ring-slow2",
                                    "D-PSGD on the ring, with 2 of the ranks on slow_gbps links (the others at --gbps)",
                                    {{"lr", 0.1}, {"momentum", 0.9}, {"slow_gbps", 1.0}}, dpsgd_ring));
  list.push_back(make_configuration(
      "dpsgd-planned-slow2",
      "D-PSGD re-planned from measured links after round 1 and every replan_every rounds (2 slow ranks)",
      {{"lr", 0.1}, {"momentum", 0.9}, {"slow_gbps", 1.0}, {"replan_every", 100}, {"degree", 4}}, planned_ring));
  list.push_back(make_configuration(
      "clustered-slow2",
      "clusters by speed: exact average inside, leaders mix (n_c/W weights) every outer_every rounds (2 slow ranks)",
      {{"lr", 0.1}, {"momentum", 0.9}, {"slow_gbps", 1.0}, {"clusters", 2}, {"outer_every", 4}}, clustered));
}

}  // namespace study

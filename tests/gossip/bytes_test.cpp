// Metered bytes per rank and round equal the formulas of docs/gossip.md,
// headers included (H = 32 bytes per message, b bytes per value).
#include <terse/collective/gossip.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/topk.hpp>
#include <terse/topology.hpp>
#include <terse/transport/metered.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "gossip_support.hpp"

namespace {

using terse::host_span;
constexpr std::uint64_t header = 32;

// Bytes this rank sent in `rounds` rounds, checked equal on every rank.
template <class V, class Mixer>
std::uint64_t sent_per_round(const terse::topology::graph& g, std::size_t n, Mixer mixer, int rounds = 3)
{
  std::vector<std::uint64_t> sent(static_cast<std::size_t>(g.world()));
  std::vector<std::uint64_t> received(static_cast<std::size_t>(g.world()));
  terse::run_local(g.world(), [&](terse::local_transport& t) {
    terse::metered m(t);
    terse::gossip mix(m, n, g, mixer, terse::elements<V>{}, terse::gossip_options{.check_plan = false});
    std::vector<V> x = gossip_test::start_vector<V>(t.rank(), n);
    for (int r = 0; r < rounds; ++r) {
      mix.mix(host_span<V>(x));
    }
    REQUIRE(m.counts(terse::verb::allreduce).calls == 0);  // no global step hides in a round
    sent[static_cast<std::size_t>(t.rank())] =
        m.counts(terse::verb::send).bytes_sent / static_cast<std::uint64_t>(rounds);
    received[static_cast<std::size_t>(t.rank())] =
        (m.counts(terse::verb::send).bytes_received + m.counts(terse::verb::recv).bytes_received) /
        static_cast<std::uint64_t>(rounds);
  });
  for (std::size_t r = 0; r < sent.size(); ++r) {
    REQUIRE(sent[r] == sent[0]);
    REQUIRE(received[r] == sent[0]);
  }
  return sent[0];
}

}  // namespace

TEST_CASE("bytes per rank and round: one-peer, exponential, ring")
{
  const std::size_t n = 1000;
  for (int world : {4, 8, 16}) {
    CAPTURE(world);
    const auto tau = static_cast<std::uint64_t>(std::ceil(std::log2(world)));
    REQUIRE(sent_per_round<float>(terse::topology::one_peer_exponential(world), n, terse::mixer::average{}) ==
            header + n * 4);
    REQUIRE(sent_per_round<double>(terse::topology::one_peer_exponential(world), n, terse::mixer::push_sum{}) ==
            header + (n + 1) * 8);
    REQUIRE(sent_per_round<float>(terse::topology::exponential(world), n, terse::mixer::average{}) ==
            tau * (header + n * 4));
    REQUIRE(sent_per_round<double>(terse::topology::ring(world), n, terse::mixer::average{}) == 2 * (header + n * 8));
  }
}

TEST_CASE("bytes per rank and round: CHOCO sends the degree times the codec's payload")
{
  const std::size_t n = 1000;
  const terse::compress::topk topk{.density = 0.1f};
  const terse::compress::qsgd<15> qsgd{};
  REQUIRE(sent_per_round<double>(terse::topology::ring(8), n, terse::mixer::choco{topk, 0.2}) ==
          2 * (header + topk.max_encoded_bytes(n)));
  REQUIRE(sent_per_round<float>(terse::topology::torus(4, 4), n, terse::mixer::choco{qsgd, 0.5}) ==
          4 * (header + qsgd.max_encoded_bytes(n)));
  // top-10% of 1000 floats: 100 (index, value) pairs, about a fifth of dense.
  REQUIRE(topk.max_encoded_bytes(n) <= n * 4 / 4);
}

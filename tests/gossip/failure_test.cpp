// Bad rounds: ranks that disagree on the plan, a silent neighbour, damaged
// frames, NaN, and a consensus step that diverges. Every case raises a
// terse::error and none hangs or half-changes a rank's state.
#include <terse/collective/detail/gossip_frame.hpp>
#include <terse/collective/gossip.hpp>
#include <terse/compress/topk.hpp>
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "gossip_support.hpp"

namespace {

using terse::host_span;

terse::errc code_of(auto&& body)
{
  try {
    body();
  } catch (const terse::error& e) {
    return e.code();
  }
  return terse::errc::internal;  // "no error" for these tests
}

terse::transport_options quick()
{
  return {.timeout = std::chrono::milliseconds(300), .checked = true};
}

}  // namespace

TEST_CASE("ranks running different plans raise mismatch on every rank in checked mode")
{
  std::vector<terse::errc> codes(4, terse::errc::internal);
  terse::run_local(
      4,
      [&](terse::local_transport& t) {
        // Rank 0 is one epoch ahead: the same edges, another plan.
        const auto g = terse::topology::ring(4).with_epoch(t.rank() == 0 ? 1 : 0);
        terse::gossip mix(t, 8, g, terse::gossip_options{.check_plan = true});
        std::vector<float> x(8, 1.0f);
        codes[static_cast<std::size_t>(t.rank())] = code_of([&] { mix.mix(host_span<float>(x)); });
        REQUIRE(mix.rounds() == 0);
      },
      quick());
  for (terse::errc c : codes) {
    REQUIRE(c == terse::errc::mismatch);
  }
}

TEST_CASE("a frame of another plan is refused by the neighbours that receive it")
{
  std::vector<terse::errc> codes(4, terse::errc::internal);
  std::vector<std::vector<float>> after(4);
  terse::run_local(
      4,
      [&](terse::local_transport& t) {
        const auto g = terse::topology::ring(4).with_epoch(t.rank() == 0 ? 1 : 0);
        terse::gossip mix(t, 8, g, terse::gossip_options{.check_plan = false});
        std::vector<float> x(8, static_cast<float>(t.rank()));
        codes[static_cast<std::size_t>(t.rank())] = code_of([&] { mix.mix(host_span<float>(x)); });
        after[static_cast<std::size_t>(t.rank())] = x;
      },
      quick());
  REQUIRE(codes[0] == terse::errc::mismatch);  // its neighbours' frames carry the other plan
  REQUIRE(codes[1] == terse::errc::mismatch);
  REQUIRE(codes[3] == terse::errc::mismatch);
  REQUIRE(codes[2] == terse::errc::internal);  // rank 2's neighbours agree with it
  for (int r : {0, 1, 3}) {
    for (float v : after[static_cast<std::size_t>(r)]) {
      REQUIRE(v == static_cast<float>(r));  // unchanged
    }
  }
}

TEST_CASE("a silent neighbour is a timeout within the deadline, and the round changes nothing")
{
  std::vector<terse::errc> codes(4, terse::errc::internal);
  std::vector<std::uint64_t> rounds(4, 99);
  const auto begin = std::chrono::steady_clock::now();
  terse::run_local(
      4,
      [&](terse::local_transport& t) {
        terse::gossip mix(t, 8, terse::topology::ring(4), terse::gossip_options{.check_plan = false});
        std::vector<float> x(8, static_cast<float>(t.rank()));
        if (t.rank() != 3) {
          codes[static_cast<std::size_t>(t.rank())] = code_of([&] { mix.mix(host_span<float>(x)); });
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(800));  // alive, but silent
        }
        rounds[static_cast<std::size_t>(t.rank())] = mix.rounds();
        if (t.rank() == 0 || t.rank() == 2) {
          for (float v : x) {
            REQUIRE(v == static_cast<float>(t.rank()));
          }
        }
      },
      quick());
  REQUIRE(std::chrono::steady_clock::now() - begin < std::chrono::seconds(10));
  // The first to time out reports timeout; the local world then counts as
  // broken, so the other may see peer_failed.
  REQUIRE((codes[0] == terse::errc::timeout || codes[2] == terse::errc::timeout));
  for (int r : {0, 2}) {
    REQUIRE((codes[static_cast<std::size_t>(r)] == terse::errc::timeout ||
             codes[static_cast<std::size_t>(r)] == terse::errc::peer_failed));
  }
  REQUIRE(codes[1] == terse::errc::internal);  // rank 1 does not talk to rank 3
  REQUIRE(rounds[0] == 0);
  REQUIRE(rounds[1] == 1);
}

TEST_CASE("NaN on one rank: diverged at once there and at its neighbours, or on every rank at the next probe")
{
  SUBCASE("without probes")
  {
    std::vector<terse::errc> codes(5, terse::errc::internal);
    terse::run_local(
        5,
        [&](terse::local_transport& t) {
          terse::gossip mix(t, 8, terse::topology::ring(5), terse::gossip_options{.check_plan = false});
          std::vector<float> x(8, 1.0f);
          if (t.rank() == 2) {
            x[3] = std::numeric_limits<float>::quiet_NaN();
          }
          codes[static_cast<std::size_t>(t.rank())] = code_of([&] { mix.mix(host_span<float>(x)); });
          if (t.rank() == 1 || t.rank() == 3) {
            REQUIRE(x[3] == 1.0f);  // NaN was not mixed in
          }
        },
        quick());
    REQUIRE(codes == std::vector<terse::errc>{terse::errc::internal, terse::errc::diverged, terse::errc::diverged,
                                              terse::errc::diverged, terse::errc::internal});
  }
  SUBCASE("with a probe every 3 rounds")
  {
    std::vector<terse::errc> codes(5, terse::errc::internal);
    std::vector<std::uint64_t> failed_at(5, 0);
    terse::run_local(
        5,
        [&](terse::local_transport& t) {
          terse::gossip mix(t, 8, terse::topology::ring(5),
                            terse::gossip_options{.probe_every = 3, .probe = terse::consensus_probe::sketch});
          std::vector<float> x(8, static_cast<float>(t.rank()));
          const auto r = static_cast<std::size_t>(t.rank());
          codes[r] = code_of([&] {
            for (int round = 0; round < 6; ++round) {
              if (t.rank() == 2 && round == 1) {
                x[3] = std::numeric_limits<float>::infinity();
              }
              mix.mix(host_span<float>(x));
            }
          });
          failed_at[r] = mix.rounds();
          if (t.rank() == 0) {
            REQUIRE(std::isfinite(x[3]));  // the poison stopped mixing before it reached here
          }
        },
        quick());
    for (std::size_t r = 0; r < 5; ++r) {
      CAPTURE(r);
      REQUIRE(codes[r] == terse::errc::diverged);
      REQUIRE(failed_at[r] == 3);  // the first probe after round 1, on every rank
    }
  }
}

TEST_CASE("CHOCO with a consensus step too large for top-10% raises diverged on every rank at the same probe")
{
  std::vector<terse::errc> codes(8, terse::errc::internal);
  std::vector<std::uint64_t> rounds(8, 0);
  terse::run_local(8, [&](terse::local_transport& t) {
    terse::gossip mix(t, 1000, terse::topology::ring(8),
                      terse::mixer::choco{terse::compress::topk{.density = 0.1f}, 0.6},
                      terse::gossip_options{.probe_every = 10,
                                            .probe = terse::consensus_probe::exact,
                                            .divergence_growth = 1.2,
                                            .divergence_patience = 3},
                      terse::elements<double>{});
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), 1000);
    codes[static_cast<std::size_t>(t.rank())] = code_of([&] {
      for (int round = 0; round < 500; ++round) {
        mix.mix(host_span<double>(x));
      }
    });
    rounds[static_cast<std::size_t>(t.rank())] = mix.rounds();
  });
  MESSAGE("diverged after " << rounds[0] << " rounds");
  for (std::size_t r = 0; r < 8; ++r) {
    REQUIRE(codes[r] == terse::errc::diverged);
    REQUIRE(rounds[r] == rounds[0]);
  }
  REQUIRE(rounds[0] < 500);
  REQUIRE(rounds[0] % 10 == 0);
}

TEST_CASE("frame headers: damaged frames are malformed, frames of another round or plan are mismatches")
{
  namespace d = terse::detail;
  const d::gossip_header expected{
      .mixer = 1, .flags = 0, .value_bytes = 4, .plan_hash = 77, .round = 5, .payload_bytes = 0};
  std::vector<std::byte> frame(d::gossip_header_bytes + 16);
  auto with = [&](d::gossip_header h) {
    d::write_gossip_header(h, frame.data());
    return code_of([&] { d::read_gossip_header(host_span<const std::byte>(frame), expected, 3); });
  };
  d::gossip_header good = expected;
  good.payload_bytes = 16;
  REQUIRE(with(good) == terse::errc::internal);
  d::gossip_header h = good;
  h.payload_bytes = 17;
  REQUIRE(with(h) == terse::errc::malformed_payload);
  h = good;
  h.flags = 4;
  REQUIRE(with(h) == terse::errc::malformed_payload);
  h = good;
  h.round = 6;
  REQUIRE(with(h) == terse::errc::mismatch);
  h = good;
  h.plan_hash = 78;
  REQUIRE(with(h) == terse::errc::mismatch);
  h = good;
  h.value_bytes = 8;
  REQUIRE(with(h) == terse::errc::mismatch);
  d::write_gossip_header(good, frame.data());
  frame[0] = std::byte{0};
  REQUIRE(code_of([&] { d::read_gossip_header(host_span<const std::byte>(frame), expected, 3); }) ==
          terse::errc::malformed_payload);
  REQUIRE(code_of([&] { d::read_gossip_header(host_span<const std::byte>(frame.data(), 10), expected, 3); }) ==
          terse::errc::malformed_payload);
}

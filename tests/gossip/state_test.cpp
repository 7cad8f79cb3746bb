// Same seed, same bits; save + load mid-run changes nothing; a bad blob
// changes nothing either.
#include <terse/collective/gossip.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/randomk.hpp>
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "gossip_support.hpp"

namespace {

using terse::host_span;

// Runs `first` rounds, optionally saves and reloads into a fresh
// collective, then `second` more; returns every rank's values.
template <class Mixer>
std::vector<std::vector<double>> run(const terse::topology::graph& g, Mixer mixer, int first, int second, bool reload)
{
  const std::size_t n = 300;
  std::vector<std::vector<double>> out(static_cast<std::size_t>(g.world()));
  terse::run_local(g.world(), [&](terse::local_transport& t) {
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
    terse::gossip a(t, n, g, mixer, terse::elements<double>{}, terse::gossip_options{.seed = 5});
    for (int r = 0; r < first; ++r) {
      a.mix(host_span<double>(x));
    }
    if (reload) {
      std::stringstream blob;
      a.save(blob);
      terse::gossip b(t, n, g, mixer, terse::elements<double>{}, terse::gossip_options{.seed = 5});
      b.load(blob);
      REQUIRE(b.rounds() == a.rounds());
      for (int r = 0; r < second; ++r) {
        b.mix(host_span<double>(x));
      }
    } else {
      for (int r = 0; r < second; ++r) {
        a.mix(host_span<double>(x));
      }
    }
    out[static_cast<std::size_t>(t.rank())] = x;
  });
  return out;
}

}  // namespace

TEST_CASE("same seed, same bits; k rounds + save + load + k rounds equals 2k rounds")
{
  namespace topo = terse::topology;
  const auto choco = terse::mixer::choco{terse::compress::randomk{.density = 0.2}, 0.3};
  const auto qsgd = terse::mixer::choco{terse::compress::qsgd<7>{}, 0.5};
  REQUIRE(run(topo::ring(6), choco, 7, 7, false) == run(topo::ring(6), choco, 14, 0, false));
  REQUIRE(run(topo::ring(6), choco, 7, 7, true) == run(topo::ring(6), choco, 14, 0, false));
  REQUIRE(run(topo::torus(2, 3), qsgd, 5, 6, true) == run(topo::torus(2, 3), qsgd, 11, 0, false));
  const auto arcs = std::vector<std::pair<int, int>>{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 0}, {0, 2}};
  const auto directed = topo::directed(5, arcs, topo::stochasticity::column);
  REQUIRE(run(directed, terse::mixer::push_sum{}, 4, 5, true) == run(directed, terse::mixer::push_sum{}, 9, 0, false));
  REQUIRE(run(topo::random_matchings(6, 9), terse::mixer::average{}, 3, 4, true) ==
          run(topo::random_matchings(6, 9), terse::mixer::average{}, 7, 0, false));
  // A different seed draws different random-k coordinates.
  std::vector<std::vector<double>> other;
  {
    const std::size_t n = 300;
    other.resize(6);
    terse::run_local(6, [&](terse::local_transport& t) {
      std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
      terse::gossip a(t, n, topo::ring(6), choco, terse::elements<double>{}, terse::gossip_options{.seed = 6});
      for (int r = 0; r < 14; ++r) {
        a.mix(host_span<double>(x));
      }
      other[static_cast<std::size_t>(t.rank())] = x;
    });
  }
  REQUIRE(other != run(topo::ring(6), choco, 14, 0, false));
}

TEST_CASE("a blob of another size or mixer, or a truncated one, raises io and changes nothing")
{
  terse::run_local(3, [&](terse::local_transport& t) {
    const std::size_t n = 50;
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), n);
    const auto mixer = terse::mixer::choco{terse::compress::qsgd<7>{}, 0.5};
    terse::gossip a(t, n, terse::topology::ring(3), mixer, terse::elements<double>{});
    for (int r = 0; r < 3; ++r) {
      a.mix(host_span<double>(x));
    }
    std::stringstream blob;
    a.save(blob);
    const std::string bytes = blob.str();

    terse::gossip b(t, n, terse::topology::ring(3), mixer, terse::elements<double>{});
    const auto check_io = [&](auto& target, const std::string& data) {
      std::stringstream in(data);
      try {
        target.load(in);
        FAIL("load accepted a bad blob");
      } catch (const terse::error& e) {
        REQUIRE(e.code() == terse::errc::io);
      }
      REQUIRE(target.rounds() == 0);
    };
    check_io(b, bytes.substr(0, bytes.size() - 7));  // truncated inside s
    for (double v : b.public_copy()) {
      REQUIRE(v == 0.0);  // nothing half-restored
    }
    terse::gossip c(t, n + 1, terse::topology::ring(3), mixer, terse::elements<double>{});
    check_io(c, bytes);
    terse::gossip d(t, n, terse::topology::ring(3), terse::elements<double>{});
    check_io(d, bytes);
    std::stringstream good(bytes);
    b.load(good);
    REQUIRE(b.rounds() == 3);
  });
}

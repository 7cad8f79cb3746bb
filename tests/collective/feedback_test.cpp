// The feedback rules on their own, and the fused residual path.
#include <terse/collective/allreduce.hpp>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/periodic_flush.hpp>
#include <terse/feedback/residual.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <vector>

#include "test_codecs.hpp"

using terse::host_span;

TEST_CASE("residual stages p = g + e without changing e, and commit keeps p - decoded")
{
  static_assert(terse::concepts::feedback<terse::feedback::residual>);
  terse::feedback::residual fb;
  const std::vector<float> g{1.0f, 2.0f, 3.0f};
  const auto p = fb.compensate(7, host_span<const float>(g));
  CHECK(std::vector<float>(p.begin(), p.end()) == g);  // e starts at zero
  const std::vector<float> decoded{1.0f, 0.0f, 2.5f};
  fb.commit(7, p, host_span<const float>(decoded));
  const auto p2 = fb.compensate(7, host_span<const float>(g));
  CHECK(std::vector<float>(p2.begin(), p2.end()) == std::vector<float>{1.0f, 4.0f, 3.5f});
  const auto again = fb.compensate(7, host_span<const float>(g));  // compensate twice: same, state untouched
  CHECK(std::vector<float>(again.begin(), again.end()) == std::vector<float>{1.0f, 4.0f, 3.5f});
  CHECK(fb.held_back_squared_norm() == doctest::Approx(4.0 + 0.25));
  std::vector<float> wrong(4);
  CHECK_THROWS_AS(fb.compensate(7, host_span<const float>(wrong)), terse::error);  // sizes are fixed per segment
}

TEST_CASE("DGC momentum correction: accumulate, mask sent momentum, keep the unsent part")
{
  terse::feedback::dgc_momentum fb({.momentum = 0.5f});
  const std::vector<float> g{1.0f, 1.0f};
  auto v = fb.compensate(0, host_span<const float>(g));  // m = g, v = g
  CHECK(std::vector<float>(v.begin(), v.end()) == std::vector<float>{1.0f, 1.0f});
  std::vector<float> v_copy(v.begin(), v.end());
  const std::vector<float> sent_first{1.0f, 0.0f};  // coordinate 0 went out
  fb.commit(0, host_span<const float>(v_copy), host_span<const float>(sent_first));
  // step 2: m = (0, 0.5*1) + g = (1, 1.5); v = (0, 1) + m = (1, 2.5)
  v = fb.compensate(0, host_span<const float>(g));
  CHECK(v[0] == 1.0f);
  CHECK(v[1] == 2.5f);
}

TEST_CASE("DGC clips by the global norm over sqrt(W) and warms the density up exponentially")
{
  terse::feedback::dgc_momentum fb({.momentum = 0.0f, .max_norm = 2.0f, .warmup_steps = 4, .warmup_density = 0.25});
  const std::vector<float> g{3.0f, 4.0f};       // norm 5
  fb.begin_step(host_span<const float>(g), 4);  // limit 2 / sqrt(4) = 1
  const auto v = fb.compensate(0, host_span<const float>(g));
  CHECK(std::hypot(v[0], v[1]) == doctest::Approx(1.0));
  CHECK(fb.adjusted_density(0, 0.01) == doctest::Approx(0.25));
  CHECK(fb.adjusted_density(2, 0.01) == doctest::Approx(0.05));  // geometric midpoint
  CHECK(fb.adjusted_density(4, 0.01) == doctest::Approx(0.01));
  CHECK(fb.adjusted_density(100, 0.01) == doctest::Approx(0.01));
}

TEST_CASE("periodic flush sends the compensated values dense and empties the residual")
{
  constexpr int world = 2;
  const terse::layout shape = terse::layout::single(64);
  std::vector<std::vector<double>> held(world);
  std::vector<std::vector<float>> flushed(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    using flush_t = terse::feedback::periodic_flush<terse::feedback::residual>;
    terse::allreduce<test_codecs::grid, flush_t> sync(t, shape, {}, test_codecs::grid{.step = 1.0f}, flush_t(3));
    for (int step = 0; step < 3; ++step) {
      std::vector<float> g(64, 0.3f);
      sync.average(host_span<float>(g));
      held[static_cast<std::size_t>(t.rank())].push_back(sync.feedback().inner().held_back_squared_norm());
      if (step == 2) {
        flushed[static_cast<std::size_t>(t.rank())] = g;
      }
    }
  });
  for (int r = 0; r < world; ++r) {
    const auto& h = held[static_cast<std::size_t>(r)];
    CHECK(h[0] > 0.0);   // 0.3 rounds to 0: all held back
    CHECK(h[1] > h[0]);  // 0.6 -> 1: -0.4 held back (larger in magnitude)
    CHECK(h[2] == 0.0);  // step 3 flushes
    // flush step sends g + e = 0.3 + (-0.4) = -0.1 exactly (no rounding)
    CHECK(flushed[static_cast<std::size_t>(r)][0] == doctest::Approx(-0.1f));
  }
}

TEST_CASE("the fused residual path gives the same bits as compensate + commit")
{
  constexpr int world = 3;
  const terse::layout shape = terse::layout::single(300);
  std::vector<std::vector<float>> fused(world), plain(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    static_assert(terse::concepts::residual_fusing_compressor<test_codecs::fused_grid>);
    terse::allreduce<test_codecs::fused_grid, terse::feedback::residual> a(t, shape, {},
                                                                           test_codecs::fused_grid{{.step = 0.1f}});
    terse::allreduce<test_codecs::grid, terse::feedback::residual> b(t, shape, {}, test_codecs::grid{.step = 0.1f});
    std::vector<float> ga, gb;
    for (int step = 0; step < 6; ++step) {
      ga.assign(300, 0.037f * static_cast<float>(step + t.rank()));
      gb = ga;
      a.average(host_span<float>(ga));
      b.average(host_span<float>(gb));
    }
    fused[static_cast<std::size_t>(t.rank())] = ga;
    plain[static_cast<std::size_t>(t.rank())] = gb;
    CHECK(a.feedback().held_back_squared_norm() == b.feedback().held_back_squared_norm());
  });
  CHECK(fused == plain);
}

TEST_CASE("DGC momentum state saves and restores")
{
  terse::feedback::dgc_momentum fb({.momentum = 0.9f});
  const std::vector<float> g{1.0f, -2.0f, 0.5f};
  auto v = fb.compensate(3, host_span<const float>(g));
  std::vector<float> v_copy(v.begin(), v.end());
  const std::vector<float> none(3, 0.0f);
  fb.commit(3, host_span<const float>(v_copy), host_span<const float>(none));
  std::stringstream blob;
  terse::state_writer w(blob);
  fb.save(w);
  terse::feedback::dgc_momentum restored({.momentum = 0.9f});
  terse::state_reader r(blob);
  restored.load(r);
  const auto a = fb.compensate(3, host_span<const float>(g));
  const auto b = restored.compensate(3, host_span<const float>(g));
  CHECK(std::vector<float>(a.begin(), a.end()) == std::vector<float>(b.begin(), b.end()));
}

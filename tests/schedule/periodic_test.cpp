#include <terse/collective/allreduce.hpp>
#include <terse/schedule/periodic.hpp>

#include <doctest/doctest.h>

#include <vector>

TEST_CASE("periodic averages parameters every H steps and never gradients")
{
  static_assert(terse::concepts::schedule<terse::schedule::periodic>);
  constexpr int world = 3;
  std::vector<std::vector<int>> synced(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport,
                     terse::schedule::periodic>
        sync(t, terse::layout::single(4), {}, {}, {}, terse::schedule::periodic(4));
    std::vector<float> params(4, static_cast<float>(t.rank()));
    for (int step = 0; step < 12; ++step) {
      std::vector<float> grads(4, 1.0f);
      CHECK(sync.on_gradients(terse::host_span<float>(grads)) == terse::sync_action::skip);
      CHECK(grads[0] == 1.0f);
      for (float& p : params) {
        p += 1.0f;  // a local step
      }
      if (sync.on_parameters(terse::host_span<float>(params)) == terse::sync_action::average) {
        synced[static_cast<std::size_t>(t.rank())].push_back(step);
        CHECK(params[0] == static_cast<float>(step + 1) + 1.0f);  // mean of rank + steps: rank mean is 1
      }
    }
  });
  for (const auto& s : synced) {
    CHECK(s == std::vector<int>{3, 7, 11});
  }
  CHECK_THROWS_AS(terse::schedule::periodic(0), terse::error);
}

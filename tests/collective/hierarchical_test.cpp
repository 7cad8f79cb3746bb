// The hierarchical allreduce: dense equals flat (exactly on integer-valued
// data), codecs stay within 1.5x of the flat compressed allreduce's error,
// only owners talk across groups, and a failed step changes nothing.
#include <terse/collective/hierarchical.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/metered.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using results = std::vector<std::vector<float>>;

const terse::layout& mixed_layout()
{
  static const std::vector<std::size_t> sizes{3001, 10, 1537, 7, 4099};
  static const terse::layout shape(sizes, 4600, /*dense_below=*/64);
  return shape;
}

float integer_value(int rank, std::size_t i)
{
  return static_cast<float>(static_cast<int>((i * 7 + static_cast<std::size_t>(rank) * 13) % 41) - 20);
}

float random_value(int rank, std::size_t i, int step = 0)
{
  std::mt19937 gen(static_cast<unsigned>(rank * 7919 + step * 104729) ^ static_cast<unsigned>(i / 512));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  float v = 0.0f;
  for (std::size_t k = 0; k <= i % 512; ++k) {
    v = normal(gen);
  }
  return v;
}

std::vector<float> values_of(int rank, const std::function<float(int, std::size_t)>& value)
{
  std::vector<float> v(mixed_layout().total());
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i] = value(rank, i);
  }
  return v;
}

/// Each rank's buffer after one step of the flat (dense or compressed) allreduce.
template <class... Policies>
results flat(int world, const std::function<float(int, std::size_t)>& value, Policies... policies)
{
  results out(static_cast<std::size_t>(world));
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce sync(t, mixed_layout(), policies...);
    std::vector<float> v = values_of(t.rank(), value);
    sync.average(terse::host_span<float>(v));
    out[static_cast<std::size_t>(t.rank())] = v;
  });
  return out;
}

template <class... Policies>
results hierarchical(int world, const terse::groups& how, const std::function<float(int, std::size_t)>& value,
                     Policies... policies)
{
  results out(static_cast<std::size_t>(world));
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::hierarchical_allreduce sync(t, how, mixed_layout(), policies...);
    std::vector<float> v = values_of(t.rank(), value);
    sync.average(terse::host_span<float>(v));
    out[static_cast<std::size_t>(t.rank())] = v;
  });
  return out;
}

double relative_error(const std::vector<float>& got, const std::vector<double>& want)
{
  double diff = 0.0;
  double norm = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return std::sqrt(diff / norm);
}

std::vector<double> exact_mean(int world, const std::function<float(int, std::size_t)>& value)
{
  std::vector<double> mean(mixed_layout().total(), 0.0);
  for (int r = 0; r < world; ++r) {
    for (std::size_t i = 0; i < mean.size(); ++i) {
      mean[i] += value(r, i);
    }
  }
  for (double& m : mean) {
    m /= world;
  }
  return mean;
}

void require_replicas_identical(const results& out)
{
  for (const auto& r : out) {
    REQUIRE(r == out[0]);
  }
}

struct grouping {
  const char* name;
  int world;
  terse::groups how;
  int groups;
  int shards;
};

std::vector<grouping> groupings()
{
  return {
      {"2 groups of 4", 8, terse::groups::of_size(4), 2, 4},
      {"groups of 3, 3, 2", 8, terse::groups::of_size(3), 3, 2},
      {"unequal colours 3 + 5", 8, terse::groups::by_colour(0), 2, 3},  // colour set per rank below
      {"interleaved list", 8, terse::groups::from_list({{0, 5, 2}, {1, 3, 4, 6, 7}}), 2, 3},
      {"one group", 6, terse::groups::of_size(6), 1, 6},
      {"singletons", 5, terse::groups::of_size(1), 5, 1},
      {"shared memory (one group of threads)", 4, terse::groups::shared_memory(), 1, 4},
  };
}

// by_colour takes this rank's colour; the grouping table stores a
// placeholder, replaced here (ranks 0-2: colour 0, 3-7: colour 1).
terse::groups groups_for(const grouping& g, int rank)
{
  if (std::string(g.name) == "unequal colours 3 + 5") {
    return terse::groups::by_colour(rank < 3 ? 0 : 1);
  }
  return g.how;
}

template <class... Policies>
results hierarchical_for(const grouping& g, const std::function<float(int, std::size_t)>& value, Policies... policies)
{
  results out(static_cast<std::size_t>(g.world));
  terse::run_local(g.world, [&](terse::local_transport& t) {
    terse::hierarchical_allreduce sync(t, groups_for(g, t.rank()), mixed_layout(), policies...);
    CHECK(sync.group_count() == g.groups);
    CHECK(sync.shard_count() == g.shards);
    CHECK(sync.owns_shard() == (sync.group().rank() < g.shards));
    std::vector<float> v = values_of(t.rank(), value);
    sync.average(terse::host_span<float>(v));
    out[static_cast<std::size_t>(t.rank())] = v;
  });
  return out;
}

}  // namespace

TEST_CASE("hierarchical dense allreduce: the flat allreduce's bits on integer-valued data, for every grouping")
{
  for (const grouping& g : groupings()) {
    const std::string name = g.name;
    CAPTURE(name);
    const results want = flat(g.world, integer_value);
    const results got = hierarchical_for(g, integer_value);
    require_replicas_identical(got);
    REQUIRE(got[0] == want[0]);
  }
}

TEST_CASE("hierarchical dense allreduce: within 1e-6 of flat on random fp32 data")
{
  for (const grouping& g : groupings()) {
    const std::string name = g.name;
    CAPTURE(name);
    const auto value = [](int r, std::size_t i) { return random_value(r, i); };
    const results want = flat(g.world, value);
    const results got = hierarchical_for(g, value);
    require_replicas_identical(got);
    std::vector<double> reference(want[0].begin(), want[0].end());
    CHECK(relative_error(got[0], reference) <= 1e-6);
  }
}

TEST_CASE("hierarchical compressed allreduce: error at most 1.5x the flat compressed allreduce's")
{
  const auto value = [](int r, std::size_t i) { return random_value(r, i); };
  const std::vector<double> mean = exact_mean(8, value);
  for (const grouping& g : groupings()) {
    if (g.world != 8) {
      continue;
    }
    const std::string name = g.name;
    CAPTURE(name);
    {
      const results f = flat(8, value, terse::compress::uniform<4>{}, terse::feedback::residual{});
      const results h = hierarchical_for(g, value, terse::compress::uniform<4>{}, terse::feedback::residual{});
      require_replicas_identical(h);
      const double flat_error = relative_error(f[0], mean);
      const double hier_error = relative_error(h[0], mean);
      CAPTURE(flat_error);
      CAPTURE(hier_error);
      CHECK(hier_error <= 1.5 * flat_error);
    }
    {
      const terse::compress::topk topk{.density = 0.1f};
      const results f = flat(8, value, topk, terse::feedback::residual{});
      const results h = hierarchical_for(g, value, topk, terse::feedback::residual{});
      require_replicas_identical(h);
      const double flat_error = relative_error(f[0], mean);
      const double hier_error = relative_error(h[0], mean);
      CAPTURE(flat_error);
      CAPTURE(hier_error);
      CHECK(hier_error <= 1.5 * flat_error);
    }
  }
}

TEST_CASE("hierarchical allreduce: only shard owners send bytes between groups, as many as the formula says")
{
  const terse::layout& shape = mixed_layout();
  const std::size_t n = shape.total();
  terse::run_local(8, [&](terse::local_transport& t) {
    terse::metered world(t);
    // groups {0,1,2} and {3,...,7}: S = 3, ranks 3 and 4 of the second group own nothing
    terse::hierarchical_allreduce sync(world, terse::groups::by_colour(t.rank() < 3 ? 0 : 1), shape);
    world.reset();
    std::vector<float> v = values_of(t.rank(), integer_value);
    sync.average(terse::host_span<float>(v));
    const terse::verb_meter across = sync.cross().counts().total();
    const terse::verb_meter inside = sync.group().counts().total();
    CHECK(world.counts().total().bytes_sent == 0);  // the world transport itself is not used by a step
    if (!sync.owns_shard()) {
      CHECK(across.bytes_sent == 0);
      CHECK(across.bytes_received == 0);
      CHECK(sync.cross().size() == 1);
    } else {
      // the dense allreduce of this shard over G = 2 owners: 2 (N - own block) bytes
      const auto shard = terse::detail::block_of(n, 3, sync.group().rank());
      const auto own = terse::detail::block_of(shard.count, 2, sync.cross().rank());
      CHECK(sync.cross().size() == 2);
      CHECK(across.bytes_sent == 2 * (shard.count - own.count) * sizeof(float));
    }
    // inside the group: every shard but a rank's own goes to its owner; owners send
    // their shard (and an 8-byte status) to every other member
    const int members = sync.group().size();
    const int me = sync.group().rank();
    std::size_t expected = 0;
    for (int s = 0; s < 3; ++s) {
      if (s != me) {
        expected += terse::detail::block_of(n, 3, s).count * sizeof(float);
      }
    }
    if (sync.owns_shard()) {
      expected += static_cast<std::size_t>(members - 1) *
                  (terse::detail::block_of(n, 3, me).count * sizeof(float) + sizeof(std::uint64_t));
    }
    CHECK(inside.bytes_sent == expected);
  });
}

TEST_CASE("hierarchical allreduce: a NaN in one shard fails the step on every rank and changes nothing")
{
  const terse::layout& shape = mixed_layout();
  // The second step's input has a NaN on rank 5, in the last of four shards;
  // a third step must then give the bits of a run without the failed one.
  const auto run = [&](bool inject) {
    results out(8);
    terse::run_local(8, [&](terse::local_transport& t) {
      terse::hierarchical_allreduce sync(t, terse::groups::of_size(4), shape, terse::compress::uniform<4>{},
                                         terse::feedback::residual{});
      std::vector<float> v = values_of(t.rank(), [](int r, std::size_t i) { return random_value(r, i, 0); });
      sync.average(terse::host_span<float>(v));
      if (inject) {
        std::vector<float> bad = values_of(t.rank(), [](int r, std::size_t i) { return random_value(r, i, 1); });
        if (t.rank() == 5) {
          bad[shape.total() - 3] = std::numeric_limits<float>::quiet_NaN();
        }
        const std::vector<float> before = bad;
        std::ostringstream state_before;
        sync.save(state_before);
        try {
          sync.average(terse::host_span<float>(bad));
          FAIL("the step should have failed");
        } catch (const terse::error& e) {
          CHECK(e.code() == terse::errc::non_finite);
        }
        CHECK(std::memcmp(bad.data(), before.data(), bad.size() * sizeof(float)) == 0);
        std::ostringstream state_after;
        sync.save(state_after);
        CHECK(state_after.str() == state_before.str());
      }
      std::vector<float> w = values_of(t.rank(), [](int r, std::size_t i) { return random_value(r, i, 2); });
      sync.average(terse::host_span<float>(w));
      out[static_cast<std::size_t>(t.rank())] = w;
    });
    return out;
  };
  const results clean = run(false);
  const results failed_once = run(true);
  require_replicas_identical(failed_once);
  CHECK(failed_once[0] == clean[0]);
}

TEST_CASE("hierarchical allreduce: save and load continue bit for bit")
{
  const terse::layout& shape = mixed_layout();
  const auto run = [&](bool reload) {
    results out(8);
    terse::run_local(8, [&](terse::local_transport& t) {
      std::stringstream saved;
      {
        terse::hierarchical_allreduce sync(t, terse::groups::of_size(3), shape, terse::compress::uniform<4>{},
                                           terse::feedback::residual{});
        std::vector<float> v = values_of(t.rank(), [](int r, std::size_t i) { return random_value(r, i, 0); });
        sync.average(terse::host_span<float>(v));
        sync.save(saved);
        if (!reload) {
          std::vector<float> w = values_of(t.rank(), [](int r, std::size_t i) { return random_value(r, i, 1); });
          sync.average(terse::host_span<float>(w));
          out[static_cast<std::size_t>(t.rank())] = w;
          return;
        }
      }
      terse::hierarchical_allreduce sync(t, terse::groups::of_size(3), shape, terse::compress::uniform<4>{},
                                         terse::feedback::residual{});
      sync.load(saved);
      CHECK(sync.step() == 1);
      std::vector<float> w = values_of(t.rank(), [](int r, std::size_t i) { return random_value(r, i, 1); });
      sync.average(terse::host_span<float>(w));
      out[static_cast<std::size_t>(t.rank())] = w;
    });
    return out;
  };
  CHECK(run(true) == run(false));
}

TEST_CASE("hierarchical allreduce: a state saved under another grouping is refused")
{
  terse::run_local(6, [&](terse::local_transport& t) {
    std::stringstream saved;
    {
      terse::hierarchical_allreduce sync(t, terse::groups::of_size(3), mixed_layout());
      sync.save(saved);
    }
    terse::hierarchical_allreduce other(t, terse::groups::of_size(2), mixed_layout());
    CHECK_THROWS_AS(other.load(saved), terse::error);
  });
}

TEST_CASE("groups::from_list refuses lists that do not partition the ranks")
{
  CHECK_THROWS_AS(terse::groups::from_list({{0, 1}, {1, 2}}).colour_of(0, 3), terse::error);
  CHECK_THROWS_AS(terse::groups::from_list({{0, 1}}).colour_of(0, 3), terse::error);
  CHECK_THROWS_AS(terse::groups::from_list({{0, 5}, {1, 2}}).colour_of(0, 3), terse::error);
  CHECK_THROWS_AS(terse::groups::of_size(0), terse::error);
  CHECK(terse::groups::from_list({{2, 0}, {1}}).colour_of(1, 3) == 1);
}

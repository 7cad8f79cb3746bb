// The compressed allreduce's three paths (summable, requantizable,
// gather-only), feedback, failure handling and state, with exact test codecs.
#include <terse/collective/allreduce.hpp>
#include <terse/feedback/residual.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

#include "test_codecs.hpp"

namespace {

const terse::layout& mixed_layout()
{
  // big, small (dense), big, small, big: several buckets and segments
  static const std::vector<std::size_t> sizes{3000, 10, 1537, 7, 4096};
  static const terse::layout shape(sizes, 4600, /*dense_below=*/64);
  return shape;
}

// Integer-valued gradients on the 1/4 grid: every codec here is exact on
// them and sums stay exact.
float grid_value(int rank, std::size_t i)
{
  return 0.25f * static_cast<float>(static_cast<int>((i * 7 + rank * 13) % 41) - 20);
}

template <class Codec>
void check_exact_average(int world, Codec codec)
{
  const terse::layout& shape = mixed_layout();
  std::vector<std::vector<float>> results(static_cast<std::size_t>(world));
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<Codec, terse::feedback::none> sync(t, shape, {}, codec);
    std::vector<float> g(shape.total());
    for (std::size_t i = 0; i < g.size(); ++i) {
      g[i] = grid_value(t.rank(), i);
    }
    sync.average(terse::host_span<float>(g));
    results[static_cast<std::size_t>(t.rank())] = g;
  });
  for (std::size_t i = 0; i < shape.total(); ++i) {
    double sum = 0;
    for (int r = 0; r < world; ++r) {
      sum += grid_value(r, i);
    }
    // average of grid values: exact when W is a power of two, else within
    // one float rounding; the requantizing owner rounds the mean to the grid.
    const double mean = sum / world;
    for (int r = 0; r < world; ++r) {
      REQUIRE(results[static_cast<std::size_t>(r)][i] == results[0][i]);  // replicas identical
    }
    const double tolerance = Codec::aggregation_kind == terse::aggregation::requantizable ? 0.125 + 1e-6 : 1e-6;
    REQUIRE(std::abs(results[0][i] - mean) <= tolerance);
  }
}

}  // namespace

TEST_CASE("each aggregation path averages exactly and keeps replicas identical for W = 1..8")
{
  for (int world = 1; world <= 8; ++world) {
    CAPTURE(world);
    check_exact_average(world, test_codecs::grid{});
    check_exact_average(world, test_codecs::nonzeros{});
    check_exact_average(world, test_codecs::truncating{});
  }
}

TEST_CASE("residual feedback makes the sum of sent updates track the sum of true gradients")
{
  // A coarse grid loses most of each small gradient. With feedback the
  // applied updates telescope: their running sum is the true running sum
  // minus the current residual, so it never drifts by more than half a grid
  // step; without feedback the updates vanish. Every rank holds the same
  // gradient here so the owner's re-encoding of the average is exact and
  // the bound is EF's alone.
  constexpr int world = 4;
  constexpr int steps = 200;
  const terse::layout shape = terse::layout::single(257);
  std::vector<double> drift_with(world), drift_without(world), held_back(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    test_codecs::grid coarse{.step = 0.5f};
    terse::allreduce<test_codecs::grid, terse::feedback::residual> with(t, shape, {}, coarse);
    terse::allreduce<test_codecs::grid, terse::feedback::none> without(t, shape, {}, coarse);
    std::vector<double> true_sum(shape.total()), sum_with(shape.total()), sum_without(shape.total());
    for (int step = 0; step < steps; ++step) {
      std::vector<float> g(shape.total());
      for (std::size_t i = 0; i < g.size(); ++i) {
        g[i] = 0.01f * static_cast<float>((i + static_cast<std::size_t>(step)) % 7);
        true_sum[i] += g[i];
      }
      std::vector<float> a = g, b = g;
      with.average(terse::host_span<float>(a));
      without.average(terse::host_span<float>(b));
      for (std::size_t i = 0; i < g.size(); ++i) {
        sum_with[i] += a[i];
        sum_without[i] += b[i];
      }
    }
    double worst_with = 0, worst_without = 0;
    for (std::size_t i = 0; i < shape.total(); ++i) {
      worst_with = std::max(worst_with, std::abs(sum_with[i] - true_sum[i]));
      worst_without = std::max(worst_without, std::abs(sum_without[i] - true_sum[i]));
    }
    drift_with[static_cast<std::size_t>(t.rank())] = worst_with;
    drift_without[static_cast<std::size_t>(t.rank())] = worst_without;
    held_back[static_cast<std::size_t>(t.rank())] = with.feedback().held_back_squared_norm();
  });
  for (int r = 0; r < world; ++r) {
    CHECK(drift_with[static_cast<std::size_t>(r)] <= 0.25 + 1e-4);              // |e_i| <= step / 2
    CHECK(drift_without[static_cast<std::size_t>(r)] > 5.0);                    // most of 200 steps lost
    CHECK(held_back[static_cast<std::size_t>(r)] <= 257 * 0.25 * 0.25 + 1e-6);  // residual stays bounded
  }
}

TEST_CASE("non-finite input on one rank raises non_finite on every rank and leaves feedback untouched")
{
  constexpr int world = 4;
  for (int path = 0; path < 3; ++path) {
    CAPTURE(path);
    std::atomic<int> raised{0};
    terse::run_local(world, [&](terse::local_transport& t) {
      const terse::layout shape = terse::layout::single(100);
      const auto run = [&](auto codec) {
        terse::allreduce<decltype(codec), terse::feedback::residual> sync(t, shape, {}, codec);
        std::vector<float> g(100, 0.3f);
        sync.average(terse::host_span<float>(g));  // builds up a residual
        const double before = sync.feedback().held_back_squared_norm();
        std::vector<float> bad(100, 0.3f);
        if (t.rank() == 2) {
          bad[17] = std::numeric_limits<float>::quiet_NaN();
        }
        try {
          sync.average(terse::host_span<float>(bad));
        } catch (const terse::error& e) {
          raised += e.code() == terse::errc::non_finite ? 1 : 0;
        }
        CHECK(sync.feedback().held_back_squared_norm() == before);
        std::vector<float> again(100, 0.3f);
        sync.average(terse::host_span<float>(again));  // still usable
      };
      if (path == 0) {
        run(test_codecs::grid{});
      } else if (path == 1) {
        run(test_codecs::nonzeros{});
      } else {
        run(test_codecs::truncating{.drop = 8});
      }
    });
    CHECK(raised == world);
  }
}

TEST_CASE("a malformed payload from one rank raises malformed_payload on every rank, no hang")
{
  constexpr int world = 4;
  for (int path = 0; path < 2; ++path) {
    std::atomic<int> raised{0};
    terse::run_local(world, [&](terse::local_transport& t) {
      const terse::layout shape = terse::layout::single(64);
      std::vector<float> g(64, 1.0f);
      try {
        if (path == 0) {
          terse::allreduce<test_codecs::grid> sync(t, shape, {}, test_codecs::grid{.corrupt_rank = 1});
          sync.average(terse::host_span<float>(g));
        } else {
          terse::allreduce<test_codecs::nonzeros> sync(t, shape, {}, test_codecs::nonzeros{.corrupt_rank = 3});
          sync.average(terse::host_span<float>(g));
        }
      } catch (const terse::error& e) {
        raised += e.code() == terse::errc::malformed_payload ? 1 : 0;
      }
      CHECK(t.healthy());
    });
    CHECK(raised == world);
  }
}

TEST_CASE("the dense path raises non_finite on every rank when an input holds Inf")
{
  std::atomic<int> raised{0};
  terse::run_local(3, [&](terse::local_transport& t) {
    terse::allreduce sync(t, terse::layout::single(10));
    std::vector<float> g(10, 1.0f);
    if (t.rank() == 0) {
      g[3] = std::numeric_limits<float>::infinity();
    }
    try {
      sync.average(terse::host_span<float>(g));
    } catch (const terse::error& e) {
      raised += e.code() == terse::errc::non_finite ? 1 : 0;
    }
  });
  CHECK(raised == 3);
}

TEST_CASE("k steps, save, restore into a fresh collective, k steps equals 2k steps bit for bit")
{
  constexpr int world = 3;
  constexpr int k = 5;
  const terse::layout& shape = mixed_layout();
  const auto gradient = [&](int rank, int step) {
    std::vector<float> g(shape.total());
    for (std::size_t i = 0; i < g.size(); ++i) {
      g[i] = 0.013f * static_cast<float>((i * 31 + static_cast<std::size_t>(rank * 7 + step * 3)) % 23) - 0.1f;
    }
    return g;
  };
  using sync_t = terse::allreduce<test_codecs::grid, terse::feedback::residual>;
  std::vector<std::vector<float>> straight(world), resumed(world);
  std::vector<std::string> blobs(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    sync_t a(t, shape, {}, test_codecs::grid{.step = 0.125f});
    std::vector<float> last;
    for (int step = 0; step < 2 * k; ++step) {
      last = gradient(t.rank(), step);
      a.average(terse::host_span<float>(last));
      if (step == k - 1) {
        std::ostringstream out;
        a.save(out);
        blobs[r] = out.str();
      }
    }
    straight[r] = last;
    sync_t b(t, shape, {}, test_codecs::grid{.step = 0.125f});
    std::istringstream in(blobs[r]);
    b.load(in);
    CHECK(b.step() == k);
    for (int step = k; step < 2 * k; ++step) {
      last = gradient(t.rank(), step);
      b.average(terse::host_span<float>(last));
    }
    resumed[r] = last;
  });
  for (int r = 0; r < world; ++r) {
    CHECK(resumed[static_cast<std::size_t>(r)] == straight[static_cast<std::size_t>(r)]);
  }
}

TEST_CASE("restoring state into another world size, rank, layout or codec raises an I/O error")
{
  std::string blob;
  terse::run_local(2, [&](terse::local_transport& t) {
    terse::allreduce<test_codecs::grid, terse::feedback::residual> sync(t, terse::layout::single(16));
    std::vector<float> g(16, 0.1f);
    sync.average(terse::host_span<float>(g));
    if (t.rank() == 0) {
      std::ostringstream out;
      sync.save(out);
      blob = out.str();
    }
  });
  const auto load_error = [&](auto& sync) {
    std::istringstream in(blob);
    try {
      sync.load(in);
    } catch (const terse::error& e) {
      return e.code() == terse::errc::io;
    }
    return false;
  };
  terse::run_local(3, [&](terse::local_transport& t) {  // another world size
    terse::allreduce<test_codecs::grid, terse::feedback::residual> sync(t, terse::layout::single(16));
    CHECK(load_error(sync));
  });
  terse::run_local(2, [&](terse::local_transport& t) {
    terse::allreduce<test_codecs::grid, terse::feedback::residual> other_layout(t, terse::layout::single(17));
    CHECK(load_error(other_layout));
    terse::allreduce<test_codecs::nonzeros, terse::feedback::residual> other_codec(t, terse::layout::single(16));
    CHECK(load_error(other_codec));
    if (t.rank() == 1) {  // the blob is rank 0's
      terse::allreduce<test_codecs::grid, terse::feedback::residual> other_rank(t, terse::layout::single(16));
      CHECK(load_error(other_rank));
    }
  });
}

TEST_CASE("a load that fails halfway changes nothing; a state loads from a stream that cannot seek")
{
  // Residual feedback over three compressed segments. `earlier` is the state
  // after two steps, `current` after three. Loading `earlier` cut short (in
  // its last residual) or with its last residual's length corrupted must
  // raise errc::io and leave `current` as it was, although the first
  // residuals of `earlier` were already read; the whole of `earlier` through
  // a forward-only stream must load.
  const terse::layout& shape = mixed_layout();
  using sync_t = terse::allreduce<test_codecs::grid, terse::feedback::residual>;
  terse::run_local(2, [&](terse::local_transport& t) {
    sync_t sync(t, shape, {}, test_codecs::grid{.step = 0.125f});
    std::vector<float> g(shape.total());
    std::string earlier;
    for (int step = 0; step < 3; ++step) {
      for (std::size_t i = 0; i < g.size(); ++i) {
        g[i] = 0.011f * static_cast<float>((i * 13 + static_cast<std::size_t>(t.rank() * 5 + step)) % 29) - 0.15f;
      }
      sync.average(terse::host_span<float>(g));
      if (step == 1) {
        std::ostringstream out;
        sync.save(out);
        earlier = out.str();
      }
    }
    std::ostringstream now;
    sync.save(now);
    const std::string current = now.str();
    REQUIRE(current != earlier);
    const auto unchanged = [&] {
      std::ostringstream out;
      sync.save(out);
      return out.str() == current;
    };

    std::istringstream short_blob(earlier.substr(0, earlier.size() - 10));
    CHECK_THROWS_AS(sync.load(short_blob), terse::error);
    CHECK(unchanged());

    // The last residual (4096 floats) ends the blob; its length sits just before it.
    std::string corrupt = earlier;
    const std::size_t length_at = corrupt.size() - 4096 * sizeof(float) - sizeof(std::uint64_t);
    std::uint64_t length = 0;
    std::memcpy(&length, corrupt.data() + length_at, sizeof length);
    REQUIRE(length == 4096);
    const std::uint64_t huge = std::uint64_t{1} << 40;
    std::memcpy(corrupt.data() + length_at, &huge, sizeof huge);
    std::istringstream corrupt_blob(corrupt);
    try {
      sync.load(corrupt_blob);
      FAIL("a corrupt length was accepted");
    } catch (const terse::error& e) {
      CHECK(e.code() == terse::errc::io);
    }
    CHECK(unchanged());

    struct forward_only : std::streambuf {
      explicit forward_only(std::string& bytes) { setg(bytes.data(), bytes.data(), bytes.data() + bytes.size()); }
      pos_type seekoff(off_type, std::ios_base::seekdir, std::ios_base::openmode) override { return pos_type(-1); }
      pos_type seekpos(pos_type, std::ios_base::openmode) override { return pos_type(-1); }
    };
    std::string bytes = earlier;
    forward_only pipe(bytes);
    std::istream piped(&pipe);
    sync.load(piped);
    std::ostringstream reloaded;
    sync.save(reloaded);
    CHECK(reloaded.str() == earlier);
  });
}

// The allreduce's step: buckets started in any order, a step as a
// transaction, mismatch and dead-peer handling, the deduced API and
// ownership.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/dgc.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/periodic_flush.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/schedule/fda.hpp>
#include <terse/schedule/slowmo.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "test_codecs.hpp"

namespace {

const terse::layout& mixed_layout()
{
  static const std::vector<std::size_t> sizes{3000, 10, 1537, 7, 4096, 900, 5};
  static const terse::layout shape(sizes, 4600, /*dense_below=*/64);
  return shape;
}

std::vector<float> gradient(const terse::layout& shape, int rank, int step)
{
  std::vector<float> g(shape.total());
  for (std::size_t i = 0; i < g.size(); ++i) {
    g[i] = 0.013f * static_cast<float>((i * 31 + static_cast<std::size_t>(rank * 7 + step * 3)) % 23) - 0.1f;
  }
  return g;
}

template <class Sync>
std::string saved(const Sync& sync)
{
  std::ostringstream out;
  sync.save(out);
  return out.str();
}

template <class Sync>
void start_in_order(Sync& sync, const terse::layout& shape, std::vector<float>& g,
                    const std::vector<std::size_t>& order)
{
  for (const std::size_t b : order) {
    const terse::bucket& bucket = shape.buckets()[b];
    sync.start(bucket.id, terse::host_span<float>(g).subspan(bucket.offset, bucket.count));
  }
}

// A step that fails on one rank in its last bucket: every rank raises `code`,
// and the state, the step counter and the caller's buffer are as before.
template <class Codec, class Feedback>
void check_transaction(Codec codec, Feedback feedback, terse::errc code, int corrupt_rank = -1)
{
  constexpr int world = 4;
  const terse::layout& shape = mixed_layout();
  std::atomic<int> raised{0};
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<Codec, Feedback> sync(t, shape, terse::allreduce_options{}, codec, feedback);
    for (int step = 0; step < 2; ++step) {  // builds up feedback and codec state
      std::vector<float> g = gradient(shape, t.rank(), step);
      sync.average(terse::host_span<float>(g));
    }
    const std::string before = saved(sync);
    std::vector<float> bad = gradient(shape, t.rank(), 2);
    if constexpr (requires { sync.compressor().corrupt_rank; }) {
      sync.compressor().corrupt_rank = corrupt_rank;  // the codec writes a bad payload there from now on
    }
    if (corrupt_rank < 0 && t.rank() == 1) {
      bad[shape.total() - 100] = std::numeric_limits<float>::quiet_NaN();  // in the last bucket
    }
    const std::vector<float> passed = bad;
    try {
      sync.average(terse::host_span<float>(bad));
    } catch (const terse::error& e) {
      raised += e.code() == code ? 1 : 0;
    }
    CHECK(saved(sync) == before);  // feedback, codec state and counters
    CHECK(std::memcmp(bad.data(), passed.data(), bad.size() * sizeof(float)) == 0);
    CHECK(t.healthy());
  });
  CHECK(raised == world);
}

}  // namespace

TEST_CASE("a non-finite value in the last bucket of one rank changes nothing on any rank, on every path")
{
  check_transaction(terse::compress::identity{}, terse::feedback::none{}, terse::errc::non_finite);
  check_transaction(test_codecs::truncating{.drop = 8}, terse::feedback::residual{}, terse::errc::non_finite);
  check_transaction(terse::compress::uniform<2>{}, terse::feedback::residual{}, terse::errc::non_finite);
  check_transaction(test_codecs::grid{}, terse::feedback::residual{}, terse::errc::non_finite);
  check_transaction(test_codecs::fused_grid{}, terse::feedback::residual{}, terse::errc::non_finite);
  check_transaction(terse::compress::topk{.density = 0.05f}, terse::feedback::residual{}, terse::errc::non_finite);
  // DGC keeps per-bucket thresholds (codec state) and its momentum rule
  // looks at the whole gradient before compensating any bucket.
  check_transaction(terse::compress::dgc{.density = 0.05f}, terse::feedback::dgc_momentum{}, terse::errc::non_finite);
}

TEST_CASE("a malformed payload in one unit changes nothing on any rank")
{
  check_transaction(test_codecs::grid{}, terse::feedback::residual{}, terse::errc::malformed_payload, 2);
  check_transaction(test_codecs::nonzeros{}, terse::feedback::residual{}, terse::errc::malformed_payload, 3);
}

TEST_CASE("buckets started in a different order on every rank give the synchronous result bit for bit")
{
  constexpr int world = 4;
  const terse::layout& shape = mixed_layout();
  const std::size_t buckets = shape.buckets().size();
  REQUIRE(buckets >= 3);
  std::vector<std::vector<float>> in_order(world), shuffled(world);
  const auto run = [&](bool shuffle, std::vector<std::vector<float>>& out) {
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::allreduce sync(t, shape, test_codecs::grid{.step = 0.125f}, terse::feedback::residual{});
      std::vector<std::size_t> order(buckets);
      for (std::size_t i = 0; i < buckets; ++i) {
        // rank r starts bucket (i + r) mod B at position i, odd ranks backwards
        const std::size_t rotated = (i + static_cast<std::size_t>(t.rank())) % buckets;
        order[i] = shuffle ? (t.rank() % 2 == 1 ? buckets - 1 - rotated : rotated) : i;
      }
      std::vector<float> g;
      for (int step = 0; step < 4; ++step) {
        g = gradient(shape, t.rank(), step);
        start_in_order(sync, shape, g, order);
        sync.wait_all();
      }
      out[static_cast<std::size_t>(t.rank())] = g;
    });
  };
  run(false, in_order);
  run(true, shuffled);
  for (int r = 0; r < world; ++r) {
    CHECK(shuffled[static_cast<std::size_t>(r)] == in_order[static_cast<std::size_t>(r)]);
    CHECK(in_order[static_cast<std::size_t>(r)] == in_order[0]);
  }
}

TEST_CASE("the synchronous average equals start + wait_all over the same buckets")
{
  const terse::layout& shape = mixed_layout();
  terse::run_local(3, [&](terse::local_transport& t) {
    terse::allreduce a(t, shape, terse::compress::cast_bf16{});
    terse::allreduce b(t, shape, terse::compress::cast_bf16{});
    std::vector<float> x = gradient(shape, t.rank(), 0);
    std::vector<float> y = x;
    a.average(terse::host_span<float>(x));
    std::vector<std::size_t> order(shape.buckets().size());
    for (std::size_t i = 0; i < order.size(); ++i) {
      order[i] = order.size() - 1 - i;
    }
    start_in_order(b, shape, y, order);
    b.wait_all();
    CHECK(x == y);
  });
}

TEST_CASE("a bucket one rank never starts raises mismatch on every rank well within the deadline")
{
  constexpr int world = 4;
  const terse::layout& shape = mixed_layout();
  for (int path = 0; path < 3; ++path) {
    CAPTURE(path);
    std::atomic<int> raised{0};
    const auto began = std::chrono::steady_clock::now();
    terse::run_local(
        world,
        [&](terse::local_transport& t) {
          const auto run = [&](auto codec) {
            terse::allreduce sync(t, shape, codec, terse::feedback::residual{});
            std::vector<float> g = gradient(shape, t.rank(), 0);
            const std::vector<float> passed = g;
            std::vector<std::size_t> order;
            for (std::size_t b = 0; b < shape.buckets().size(); ++b) {
              if (!(t.rank() == 2 && b == 1)) {
                order.push_back(b);
              }
            }
            start_in_order(sync, shape, g, order);
            try {
              sync.wait_all();
            } catch (const terse::error& e) {
              raised += e.code() == terse::errc::mismatch ? 1 : 0;
            }
            CHECK(g == passed);
            CHECK(t.healthy());
            g = gradient(shape, t.rank(), 1);  // the next step works
            sync.average(terse::host_span<float>(g));
          };
          if (path == 0) {
            run(test_codecs::grid{});
          } else if (path == 1) {
            run(test_codecs::nonzeros{});
          } else {
            run(test_codecs::truncating{.drop = 4});
          }
        },
        terse::transport_options{.timeout = std::chrono::seconds(20)});
    CHECK(raised == world);
    CHECK(std::chrono::steady_clock::now() - began < std::chrono::seconds(10));
  }
}

TEST_CASE("a silent peer gives every other rank a timeout within the deadline plus 2 s")
{
  constexpr int world = 4;
  const auto timeout = std::chrono::milliseconds(500);
  std::atomic<int> timed_out{0};
  std::vector<std::chrono::steady_clock::duration> took(world);
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        if (t.rank() == 3) {
          return;  // never takes part
        }
        terse::allreduce sync(t, mixed_layout(), test_codecs::grid{}, terse::feedback::residual{});
        std::vector<float> g = gradient(mixed_layout(), t.rank(), 0);
        const auto began = std::chrono::steady_clock::now();
        try {
          sync.average(terse::host_span<float>(g));
        } catch (const terse::error& e) {
          timed_out += (e.code() == terse::errc::timeout || e.code() == terse::errc::peer_failed) ? 1 : 0;
        }
        took[static_cast<std::size_t>(t.rank())] = std::chrono::steady_clock::now() - began;
      },
      terse::transport_options{.timeout = timeout});
  CHECK(timed_out == world - 1);
  for (int r = 0; r < world - 1; ++r) {
    CHECK(took[static_cast<std::size_t>(r)] < timeout + std::chrono::seconds(2));
  }
}

TEST_CASE("policies are deduced from arguments given in any order; the explicit spelling still works")
{
  terse::run_local(2, [&](terse::local_transport& t) {
    const terse::layout shape = terse::layout::single(1000);
    terse::allreduce a(t, shape, terse::compress::topk{.density = 0.01f}, terse::feedback::residual{});
    static_assert(std::is_same_v<decltype(a), terse::allreduce<terse::compress::topk, terse::feedback::residual,
                                                               terse::local_transport, terse::schedule::every_step>>);
    terse::allreduce b(t, shape, terse::feedback::residual{}, terse::allreduce_options{.seed = 7},
                       terse::compress::topk{.density = 0.02f});
    static_assert(std::is_same_v<decltype(b), decltype(a)>);
    CHECK(b.config().seed == 7);
    CHECK(b.compressor().density == 0.02f);
    terse::allreduce dense(t, shape);
    static_assert(std::is_same_v<decltype(dense), terse::allreduce<>>);
    terse::allreduce<terse::compress::topk, terse::feedback::residual> explicit_spelling(
        t, shape, {}, terse::compress::topk{.density = 0.01f});
    std::vector<float> x(1000, 1.0f);
    std::vector<float> y = x;
    a.average(terse::host_span<float>(x));
    explicit_spelling.average(terse::host_span<float>(y));
    CHECK(x == y);
  });
}

TEST_CASE("collectives are move-only, and a moved one carries on bit for bit")
{
  using sync_t = terse::allreduce<test_codecs::grid, terse::feedback::residual>;
  static_assert(!std::is_copy_constructible_v<sync_t> && !std::is_copy_assignable_v<sync_t>);
  static_assert(std::is_nothrow_move_constructible_v<sync_t>);
  const terse::layout& shape = mixed_layout();
  std::vector<std::vector<float>> moved(2), kept(2);
  terse::run_local(2, [&](terse::local_transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    sync_t a(t, shape);
    sync_t b(t, shape);
    std::vector<float> x, y;
    for (int step = 0; step < 4; ++step) {
      x = gradient(shape, t.rank(), step);
      y = x;
      a.average(terse::host_span<float>(x));
      b.average(terse::host_span<float>(y));
      if (step == 1) {
        sync_t c(std::move(a));
        a = std::move(c);
      }
    }
    moved[r] = x;
    kept[r] = y;
  });
  CHECK(moved == kept);
}

TEST_CASE("a schedule that drives the exchange is put back when the exchange fails")
{
  constexpr int world = 3;
  const terse::layout& shape = mixed_layout();
  const auto check = [&](auto schedule) {
    std::atomic<int> raised{0};
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::allreduce sync(t, shape, test_codecs::grid{.step = 0.125f}, terse::feedback::residual{}, schedule);
      std::vector<float> params = gradient(shape, 0, 0);  // the same start on every rank
      if constexpr (requires { sync.schedule().start(terse::host_span<const float>(params)); }) {
        sync.schedule().start(terse::host_span<const float>(params));
      }
      for (int step = 0; step < 3; ++step) {
        std::vector<float> g = gradient(shape, t.rank(), step);
        for (std::size_t i = 0; i < params.size(); ++i) {
          params[i] -= 0.1f * g[i];
        }
        sync.on_parameters(terse::host_span<float>(params));
      }
      const std::string before = saved(sync);
      if (t.rank() == 1) {
        params[7] = std::numeric_limits<float>::infinity();
      }
      const std::vector<float> passed = params;
      try {
        sync.on_parameters(terse::host_span<float>(params));
      } catch (const terse::error& e) {
        raised += e.code() == terse::errc::non_finite ? 1 : 0;
      }
      CHECK(saved(sync) == before);
      CHECK(std::memcmp(params.data(), passed.data(), params.size() * sizeof(float)) == 0);
    });
    CHECK(raised == world);
  };
  check(terse::schedule::slowmo(terse::schedule::periodic(1)));
  check(terse::schedule::fda(terse::schedule::fda_config{.threshold = 0.0}));
}

TEST_CASE("wait_all on a rank that started nothing raises mismatch there and on every peer")
{
  constexpr int world = 3;
  const terse::layout& shape = mixed_layout();
  std::atomic<int> raised{0};
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        terse::allreduce sync(t, shape, test_codecs::nonzeros{}, terse::feedback::residual{});
        std::vector<float> g = gradient(shape, t.rank(), 0);
        std::vector<std::size_t> order;
        for (std::size_t b = 0; b < shape.buckets().size() && t.rank() != 0; ++b) {
          order.push_back(b);
        }
        start_in_order(sync, shape, g, order);
        try {
          sync.wait_all();
        } catch (const terse::error& e) {
          raised += e.code() == terse::errc::mismatch ? 1 : 0;
        }
        CHECK(t.healthy());
      },
      terse::transport_options{.timeout = std::chrono::seconds(20)});
  CHECK(raised == world);
}

TEST_CASE("a bucket one rank never starts on a flush step raises mismatch on every rank")
{
  // periodic_flush(1): every step sends compensated floats, whatever the codec.
  constexpr int world = 3;
  const terse::layout& shape = mixed_layout();
  std::atomic<int> raised{0};
  terse::run_local(
      world,
      [&](terse::local_transport& t) {
        terse::allreduce sync(t, shape, test_codecs::nonzeros{}, terse::feedback::periodic_flush<>(1));
        std::vector<float> g = gradient(shape, t.rank(), 0);
        std::vector<std::size_t> order;
        for (std::size_t b = 0; b < shape.buckets().size(); ++b) {
          if (!(t.rank() == 1 && b == 0)) {
            order.push_back(b);
          }
        }
        start_in_order(sync, shape, g, order);
        try {
          sync.wait_all();
        } catch (const terse::error& e) {
          raised += e.code() == terse::errc::mismatch ? 1 : 0;
        }
        CHECK(t.healthy());
      },
      terse::transport_options{.timeout = std::chrono::seconds(20)});
  CHECK(raised == world);
}

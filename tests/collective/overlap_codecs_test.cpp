// Overlap with the codecs whose exchange once waited for the whole step:
// DGC's momentum correction holds the buckets only when it clips by the
// global norm, and PowerSGD's two averages run as the collective's own
// exchanges, bit for bit what the codec's blocking reduce gives.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/dgc.hpp>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/periodic_flush.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/local.hpp>

#if defined(TERSE_WITH_BLAS)
#include <terse/compress/powersgd.hpp>
#endif

#include <doctest/doctest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "recording_transport.hpp"

using test_overlap::position;
using test_overlap::recording_transport;

namespace {

constexpr int world = 2;
constexpr std::size_t buckets = 8;

const terse::layout& eight_buckets()
{
  static const std::vector<std::size_t> sizes(buckets, 2048);
  static const terse::layout shape(sizes, 2048);  // one tensor per bucket
  return shape;
}

int first_tag(std::size_t k)
{
  return terse::detail::allreduce_tag_base + 2 * static_cast<int>(k);
}

/// One step of `make(transport)`'s collective, the trainer computing bucket
/// k before starting it; ranks take turns so the order of events does not
/// depend on thread scheduling. Returns each rank's log; checks the
/// replicas agree.
template <class Make>
std::vector<std::vector<std::string>> recorded_step(Make make)
{
  const terse::layout& shape = eight_buckets();
  std::vector<std::vector<std::string>> logs(world);
  std::vector<std::vector<float>> results(world);
  std::barrier turn(world);
  terse::run_local(world, [&](terse::local_transport& local) {
    const auto me = static_cast<std::size_t>(local.rank());
    recording_transport t(local, logs[me]);
    auto sync = make(t);
    std::vector<float> grads(shape.total());
    for (std::size_t k = 0; k < buckets; ++k) {
      logs[me].push_back("compute " + std::to_string(k));
      const terse::bucket& b = shape.buckets()[k];
      for (std::size_t i = 0; i < b.count; ++i) {
        grads[b.offset + i] = std::sin(0.01f * static_cast<float>(i * (k + 1) + me));
      }
      const auto values = terse::host_span<float>(grads).subspan(b.offset, b.count);
      if (me == 0) {
        sync.start(b.id, values);
        turn.arrive_and_wait();
        turn.arrive_and_wait();
      } else {
        turn.arrive_and_wait();
        sync.start(b.id, values);
        turn.arrive_and_wait();
      }
    }
    sync.wait_all();
    results[me] = grads;
  });
  CHECK(results[1] == results[0]);
  return logs;
}

/// Every bucket's first exchange is posted before the trainer computes the next one.
void check_each_bucket_goes_out_at_once(const std::vector<std::vector<std::string>>& logs)
{
  for (const auto& log : logs) {
    for (std::size_t k = 0; k + 1 < buckets; ++k) {
      CAPTURE(k);
      CHECK(position(log, "post " + std::to_string(first_tag(k))) < position(log, "compute " + std::to_string(k + 1)));
    }
  }
}

}  // namespace

TEST_CASE("DGC momentum without clipping sends each bucket as it is started; with clipping it waits for the last")
{
  const auto dgc_with = [](float max_norm) {
    return [max_norm](recording_transport& t) {
      return terse::allreduce<terse::compress::dgc, terse::feedback::dgc_momentum, recording_transport>(
          t, eight_buckets(), {}, terse::compress::dgc{.density = 0.05f},
          terse::feedback::dgc_momentum({.momentum = 0.9f, .max_norm = max_norm}));
    };
  };
  check_each_bucket_goes_out_at_once(recorded_step(dgc_with(0.0f)));
  // periodic_flush passes the question on to the rule it wraps.
  check_each_bucket_goes_out_at_once(recorded_step([](recording_transport& t) {
    using flushed = terse::feedback::periodic_flush<terse::feedback::dgc_momentum>;
    return terse::allreduce<terse::compress::dgc, flushed, recording_transport>(
        t, eight_buckets(), {}, terse::compress::dgc{.density = 0.05f}, flushed(100, terse::feedback::dgc_momentum{}));
  }));

  // Clipping needs the global norm: nothing leaves before the last bucket.
  for (const auto& log : recorded_step(dgc_with(1.0f))) {
    CHECK(position(log, "post " + std::to_string(first_tag(0))) >
          position(log, "compute " + std::to_string(buckets - 1)));
  }
}

#if defined(TERSE_WITH_BLAS)
TEST_CASE("PowerSGD's two averages are the collective's own exchanges: each bucket goes out as it is started")
{
  const auto logs = recorded_step([](recording_transport& t) {
    return terse::allreduce<terse::compress::powersgd, terse::feedback::residual, recording_transport>(
        t, eight_buckets(), {}, terse::compress::powersgd{.rank = 2}, terse::feedback::residual{});
  });
  check_each_bucket_goes_out_at_once(logs);
  for (const auto& log : logs) {
    // P and Q each take a reduce-scatter and an allgather: 4 exchanges a bucket.
    CHECK(std::count(log.begin(), log.end(), "post " + std::to_string(first_tag(0))) == 2);
    CHECK(std::count(log.begin(), log.end(), "post " + std::to_string(first_tag(0) + 1)) == 2);
  }
}

namespace {
/// PowerSGD with its parts hidden: a self-reducing codec that has only the
/// blocking `reduce`, which the collective runs in wait_all.
struct blocking_powersgd : terse::compress::powersgd {
  template <class... A>
  void reduce_first(A&&...) = delete;
};
static_assert(terse::concepts::self_reducing_compressor<blocking_powersgd, terse::local_transport>);
static_assert(!terse::concepts::staged_reducing_compressor<blocking_powersgd>);
static_assert(terse::concepts::staged_reducing_compressor<terse::compress::powersgd>);
}  // namespace

TEST_CASE_TEMPLATE(
    "PowerSGD through the collective equals the codec's blocking reduce bit for bit, with and without "
    "shapes",
    Codec, terse::compress::powersgd, blocking_powersgd)
{
  constexpr int ranks = 3;
  // Buckets: {64x64 matrix, 100-vector}, {30x100}, {2048-vector}; the vector
  // of 100 is below dense_below and travels in the bucket's dense unit.
  const std::vector<terse::tensor_shape> shapes{terse::tensor_shape::matrix(64, 64), terse::tensor_shape::vector(100),
                                                terse::tensor_shape::matrix(30, 100),
                                                terse::tensor_shape::vector(2048)};
  for (const bool declared : {false, true}) {
    CAPTURE(declared);
    const std::vector<std::size_t> sizes{4096, 100, 3000, 2048};
    terse::layout shape(sizes, 4200, 256);
    if (declared) {
      shape.set_shapes(shapes);
    }
    REQUIRE(shape.buckets().size() == 3);
    const auto input = [&](int rank, int step) {
      std::vector<float> g(shape.total());
      for (std::size_t i = 0; i < g.size(); ++i) {
        g[i] = std::cos(0.003f * static_cast<float>(i * (rank + 2)) + 0.7f * static_cast<float>(step)) +
               0.01f * static_cast<float>(rank);
      }
      return g;
    };
    std::vector<std::vector<float>> collective(ranks), reference(ranks);
    terse::run_local(ranks, [&](terse::local_transport& t) {
      Codec in_collective;
      in_collective.rank = 2;
      terse::allreduce<Codec> sync(t, shape, {}, in_collective);
      terse::compress::powersgd codec{.rank = 2};
      for (int step = 0; step < 3; ++step) {
        std::vector<float> g = input(t.rank(), step);
        std::vector<float> h = g;
        // Each rank starts the buckets in its own order.
        for (std::size_t i = 0; i < shape.buckets().size(); ++i) {
          const terse::bucket& b = shape.buckets()[(i + static_cast<std::size_t>(t.rank())) % 3];
          sync.start(b.id, terse::host_span<float>(g).subspan(b.offset, b.count));
        }
        sync.wait_all();
        for (const terse::segment& seg : shape.segments()) {
          const auto values = terse::host_span<float>(h).subspan(seg.offset, seg.count);
          if (!seg.compressed) {
            t.allreduce(values, terse::reduce_op::average);
            continue;
          }
          terse::codec_context ctx;
          ctx.seed = terse::allreduce_config{}.seed;
          ctx.step = static_cast<std::uint64_t>(step);
          ctx.rank = t.rank();
          ctx.world = t.size();
          ctx.bucket = static_cast<std::uint32_t>(seg.id);
          ctx.tensors = shape.shapes_of(seg);
          codec.reduce(ctx, t, values);
        }
        collective[static_cast<std::size_t>(t.rank())] = g;
        reference[static_cast<std::size_t>(t.rank())] = h;
      }
    });
    for (int r = 0; r < ranks; ++r) {
      CHECK(collective[static_cast<std::size_t>(r)] == reference[static_cast<std::size_t>(r)]);
      CHECK(collective[static_cast<std::size_t>(r)] == collective[0]);
    }
  }
}

TEST_CASE_TEMPLATE("a PowerSGD bucket one rank never starts raises mismatch on every rank well within the deadline",
                   Codec, terse::compress::powersgd, blocking_powersgd)
{
  constexpr int world = 4;
  // Bucket 0: a compressed matrix and a dense vector; buckets 1 and 2: one
  // compressed segment each, with no dense unit whose poisoning would tell
  // the peers. In parts, the missing rank poisons PowerSGD's own first
  // exchange; a codec with only a blocking reduce relies on a dense unit
  // (without one its peers wait out the deadline: docs/collectives.md).
  const std::vector<std::size_t> skips =
      std::is_same_v<Codec, blocking_powersgd> ? std::vector<std::size_t>{0} : std::vector<std::size_t>{0, 1};
  const std::vector<std::size_t> sizes{4096, 100, 3000, 2048};
  for (const bool declared : {false, true}) {
    terse::layout shape(sizes, 4200, 256);
    if (declared) {
      shape.set_shapes(
          std::vector<terse::tensor_shape>{terse::tensor_shape::matrix(64, 64), terse::tensor_shape::vector(100),
                                           terse::tensor_shape::matrix(30, 100), terse::tensor_shape::matrix(32, 64)});
    }
    for (const std::size_t skipped : skips) {
      CAPTURE(declared);
      CAPTURE(skipped);
      std::atomic<int> raised{0};
      const auto began = std::chrono::steady_clock::now();
      terse::run_local(
          world,
          [&](terse::local_transport& t) {
            Codec codec;
            codec.rank = 2;
            terse::allreduce<Codec, terse::feedback::residual> sync(t, shape, {}, codec);
            std::vector<float> g(shape.total());
            for (int step = 0; step < 2; ++step) {  // the skip comes on the second step: state exists
              for (std::size_t i = 0; i < g.size(); ++i) {
                g[i] = std::sin(0.01f * static_cast<float>(i + 7 * static_cast<std::size_t>(t.rank() + step)));
              }
              const std::vector<float> passed = g;
              for (const terse::bucket& b : shape.buckets()) {
                if (!(step == 1 && t.rank() == 2 && b.id == skipped)) {
                  sync.start(b.id, terse::host_span<float>(g).subspan(b.offset, b.count));
                }
              }
              try {
                sync.wait_all();
              } catch (const terse::error& e) {
                raised += e.code() == terse::errc::mismatch ? 1 : 0;
                CHECK(g == passed);
              }
            }
            CHECK(t.healthy());
            sync.average(terse::host_span<float>(g));  // the next step works
          },
          terse::transport_options{.timeout = std::chrono::seconds(20)});
      CHECK(raised == world);
      CHECK(std::chrono::steady_clock::now() - began < std::chrono::seconds(10));
    }
  }
}
#endif

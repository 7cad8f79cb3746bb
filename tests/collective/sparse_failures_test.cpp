// The sparse reduce-scatter's failures, each a transaction on every rank:
// non-finite input or an overflowing average (errc::non_finite), a
// malformed payload in either exchange (errc::malformed_payload), a bucket
// a rank never starts (errc::mismatch); and buckets started in any order.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/dgc.hpp>
#include <terse/compress/threshold.hpp>
#include <terse/compress/topk.hpp>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/residual.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sparse_reference.hpp"
#include "test_codecs.hpp"

namespace {

using namespace sparse_test;
using terse::host_span;

/// A gather-only codec that writes a bad header on one rank in one phase
/// (0: its shard payloads; 1: its re-selection as an owner).
template <class Codec>
struct corrupting : Codec {
  int corrupt_rank = -1;
  std::uint32_t corrupt_phase = 0;
  std::size_t encode(const terse::codec_context& ctx, host_span<const float> in, host_span<std::byte> out)
  {
    const std::size_t used = Codec::encode(ctx, in, out);
    if (ctx.rank == corrupt_rank && ctx.phase == corrupt_phase) {
      out[0] = std::byte{0};  // bad magic
    }
    return used;
  }
  /// Hidden, so every payload goes through encode above (no fused residual).
  template <class... Arguments>
  std::size_t encode_residual(Arguments&&...) = delete;
};

}  // namespace

TEST_CASE("NaN in one rank's input raises non_finite on every rank and changes no state, on both sparse paths")
{
  const auto check = [](auto codec, auto feedback) {
    using codec_t = decltype(codec);
    using feedback_t = decltype(feedback);
    constexpr int world = 4;
    const terse::layout& shape = mixed_layout();
    std::atomic<int> raised{0};
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::allreduce<codec_t, feedback_t> sync(t, shape, reduce_scatter, codec, feedback);
      for (int step = 0; step < 2; ++step) {  // feedback (and DGC's thresholds) to keep
        std::vector<float> g = gradient(shape.total(), t.rank(), step);
        sync.average(host_span<float>(g));
      }
      const std::string before = saved(sync);
      std::vector<float> bad = gradient(shape.total(), t.rank(), 2);
      if (t.rank() == 1) {
        bad[shape.total() - 100] = std::numeric_limits<float>::quiet_NaN();  // in the last bucket
      }
      const std::vector<float> passed = bad;
      try {
        sync.average(host_span<float>(bad));
      } catch (const terse::error& e) {
        raised += e.code() == terse::errc::non_finite ? 1 : 0;
      }
      CHECK(saved(sync) == before);
      CHECK(std::memcmp(bad.data(), passed.data(), bad.size() * sizeof(float)) == 0);
      CHECK(t.healthy());
      std::vector<float> again = gradient(shape.total(), t.rank(), 3);
      sync.average(host_span<float>(again));  // still usable
    });
    CHECK(raised == world);
  };
  check(terse::compress::topk{.density = 0.05f}, terse::feedback::residual{});
  check(terse::compress::threshold{.tau = 0.006f}, terse::feedback::residual{});
  check(terse::compress::dgc{.density = 0.05f}, terse::feedback::dgc_momentum{});
  check(test_codecs::nonzeros{}, terse::feedback::residual{});
}

TEST_CASE("an average that overflows on an owner raises non_finite on every rank")
{
  constexpr int world = 3;
  std::atomic<int> raised{0};
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce sync(t, terse::layout::single(30), terse::compress::topk{.density = 0.1f},
                          terse::feedback::residual{}, reduce_scatter);
    std::vector<float> g(30, 0.0f);
    g[0] = 3e38f;  // finite everywhere, but the owner's sum is not
    try {
      sync.average(host_span<float>(g));
    } catch (const terse::error& e) {
      raised += e.code() == terse::errc::non_finite ? 1 : 0;
    }
  });
  CHECK(raised == world);
}

TEST_CASE("a malformed payload raises malformed_payload on every rank and changes no state")
{
  const auto check = [](auto codec) {
    using codec_t = decltype(codec);
    constexpr int world = 4;
    const terse::layout& shape = mixed_layout();
    std::atomic<int> raised{0};
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::allreduce<codec_t, terse::feedback::residual> sync(t, shape, reduce_scatter, codec);
      std::vector<float> g = gradient(shape.total(), t.rank(), 0);
      sync.average(host_span<float>(g));
      const std::string before = saved(sync);
      sync.compressor().corrupt_rank = 2;  // from now on
      std::vector<float> bad = gradient(shape.total(), t.rank(), 1);
      const std::vector<float> passed = bad;
      try {
        sync.average(host_span<float>(bad));
      } catch (const terse::error& e) {
        raised += e.code() == terse::errc::malformed_payload ? 1 : 0;
      }
      CHECK(saved(sync) == before);
      CHECK(std::memcmp(bad.data(), passed.data(), bad.size() * sizeof(float)) == 0);
      CHECK(t.healthy());
    });
    CHECK(raised == world);
  };
  check(test_codecs::nonzeros{});  // variable sizes; bad shard payloads and re-selections
  // top-k (fixed sizes, non-fused through this wrapper's encode): a bad shard payload to an owner, or an
  // owner's bad re-selection that every rank decodes
  using bad_topk = corrupting<terse::compress::topk>;
  check(bad_topk{{.density = 0.05f}, -1, 0});
  check(bad_topk{{.density = 0.05f}, -1, 1});
  using bad_threshold = corrupting<terse::compress::threshold>;
  check(bad_threshold{{.tau = 0.006f}, -1, 1});
}

TEST_CASE("a bucket one rank never starts raises mismatch on every rank, on both sparse paths")
{
  const auto check = [](auto codec) {
    constexpr int world = 3;
    const terse::layout& shape = mixed_layout();
    std::atomic<int> raised{0};
    terse::run_local(
        world,
        [&](terse::local_transport& t) {
          terse::allreduce sync(t, shape, codec, terse::feedback::residual{}, reduce_scatter);
          std::vector<float> g = gradient(shape.total(), t.rank(), 0);
          for (const terse::bucket& b : shape.buckets()) {
            if (!(t.rank() == 1 && b.id == 0)) {
              sync.start(b.id, host_span<float>(g).subspan(b.offset, b.count));
            }
          }
          try {
            sync.wait_all();
          } catch (const terse::error& e) {
            raised += e.code() == terse::errc::mismatch ? 1 : 0;
          }
          CHECK(t.healthy());
        },
        terse::transport_options{.timeout = std::chrono::seconds(20)});
    CHECK(raised == world);
  };
  check(terse::compress::topk{.density = 0.05f});
  check(terse::compress::threshold{.tau = 0.006f});
}

TEST_CASE("buckets started in a different order on every rank give the synchronous result bit for bit")
{
  constexpr int world = 3;
  const terse::layout& shape = mixed_layout();
  const auto check = [&](auto codec) {
    std::vector<int> same(world, 0);
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::allreduce in_order(t, shape, codec, terse::feedback::residual{}, reduce_scatter);
      terse::allreduce reversed(t, shape, codec, terse::feedback::residual{}, reduce_scatter);
      bool equal = true;
      for (int step = 0; step < 3; ++step) {
        std::vector<float> a = gradient(shape.total(), t.rank(), step);
        std::vector<float> b = a;
        in_order.average(host_span<float>(a));
        const std::size_t buckets = shape.buckets().size();
        for (std::size_t i = 0; i < buckets; ++i) {
          const terse::bucket& bucket =
              shape.buckets()[t.rank() == 1 ? buckets - 1 - i : (i + static_cast<std::size_t>(t.rank())) % buckets];
          reversed.start(bucket.id, host_span<float>(b).subspan(bucket.offset, bucket.count));
        }
        reversed.wait_all();
        equal = equal && a == b;
      }
      same[static_cast<std::size_t>(t.rank())] = equal ? 1 : 0;
    });
    CHECK(same == std::vector<int>(world, 1));
  };
  check(terse::compress::topk{.density = 0.05f});
  check(terse::compress::threshold{.tau = 0.006f});
}

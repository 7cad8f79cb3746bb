// The sparse reduce-scatter of gather-only codecs
// (allreduce_config::sparse = sparse_aggregation::reduce_scatter): bit for
// bit the serial reference of the same algorithm (sparse_reference.hpp), the
// mass invariant of its feedback, and its bytes per rank. Its failures:
// sparse_failures_test.cpp.
#include <terse/collective/allreduce.hpp>
#include <terse/compress/dgc.hpp>
#include <terse/compress/threshold.hpp>
#include <terse/compress/topk.hpp>
#include <terse/feedback/periodic_flush.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/metered.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sparse_reference.hpp"

namespace {

using namespace sparse_test;
using terse::host_span;
using terse::sparse_aggregation;

/// `steps` steps of the collective and of the reference on W ranks: every
/// rank's result equals the reference's bit for bit on compressed segments
/// (and the exact mean on dense ones), and so does the residual's norm.
template <class Codec, class Feedback>
void check_against_reference(int world, const terse::layout& shape, const Codec& codec, int steps = 4)
{
  CAPTURE(world);
  constexpr bool feedback = Feedback::stateful;
  reference<Codec> serial(world, shape, codec, feedback);
  std::vector<std::vector<std::vector<float>>> results(
      static_cast<std::size_t>(steps), std::vector<std::vector<float>>(static_cast<std::size_t>(world)));
  std::vector<std::vector<double>> held(static_cast<std::size_t>(steps), std::vector<double>(world));
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<Codec, Feedback> sync(t, shape, reduce_scatter, codec, Feedback{});
    for (int step = 0; step < steps; ++step) {
      std::vector<float> g = gradient(shape.total(), t.rank(), step);
      sync.average(host_span<float>(g));
      results[static_cast<std::size_t>(step)][static_cast<std::size_t>(t.rank())] = g;
      if constexpr (requires { sync.feedback().held_back_squared_norm(); }) {
        held[static_cast<std::size_t>(step)][static_cast<std::size_t>(t.rank())] =
            sync.feedback().held_back_squared_norm();
      } else if constexpr (feedback) {
        held[static_cast<std::size_t>(step)][static_cast<std::size_t>(t.rank())] =
            sync.feedback().inner().held_back_squared_norm();
      }
    }
  });
  for (int step = 0; step < steps; ++step) {
    CAPTURE(step);
    std::vector<std::vector<float>> grads;
    for (int r = 0; r < world; ++r) {
      grads.push_back(gradient(shape.total(), r, step));
    }
    const std::vector<float> want = serial.step(static_cast<std::uint64_t>(step), grads);
    const auto& got = results[static_cast<std::size_t>(step)];
    for (int r = 0; r < world; ++r) {
      REQUIRE(got[static_cast<std::size_t>(r)] == got[0]);  // every rank holds the same bits
    }
    std::size_t differing = 0;
    double dense_error = 0;
    for (const terse::segment& seg : shape.segments()) {
      for (std::size_t i = seg.offset; i < seg.offset + seg.count; ++i) {
        if (seg.compressed) {
          differing += std::memcmp(&got[0][i], &want[i], sizeof(float)) != 0 ? 1 : 0;
        } else {
          double mean = 0;
          for (const auto& g : grads) {
            mean += g[i];
          }
          dense_error = std::max(dense_error, std::abs(got[0][i] - mean / world));
        }
      }
    }
    CHECK(differing == 0);
    CHECK(dense_error < 1e-8);
    if constexpr (feedback) {
      for (int r = 0; r < world; ++r) {
        CHECK(held[static_cast<std::size_t>(step)][static_cast<std::size_t>(r)] == serial.held_back_squared_norm(r));
      }
    }
  }
}

/// Residual feedback without hold_back, for the engine's fallback (the drop
/// folded into what commit is told was decoded).
class plain_residual {
 public:
  static constexpr bool stateful = true;
  host_span<const float> compensate(terse::bucket_id id, host_span<const float> g)
  {
    auto& [e, p] = at(id, g.size());
    for (std::size_t i = 0; i < g.size(); ++i) {
      p[i] = g[i] + e[i];
    }
    return host_span<const float>(p);
  }
  void commit(terse::bucket_id id, host_span<const float> compensated, host_span<const float> decoded)
  {
    auto& e = at(id, compensated.size()).first;
    for (std::size_t i = 0; i < e.size(); ++i) {
      e[i] = compensated[i] - decoded[i];
    }
  }
  host_span<const float> error(terse::bucket_id id, std::size_t n) { return host_span<const float>(at(id, n).first); }

 private:
  // e and the staged p per segment; map nodes stay put, so spans stay valid
  std::pair<std::vector<float>, std::vector<float>>& at(terse::bucket_id id, std::size_t n)
  {
    auto& entry = state_[id];
    if (entry.first.size() != n) {
      entry.first.assign(n, 0.0f);
      entry.second.assign(n, 0.0f);
    }
    return entry;
  }
  std::map<terse::bucket_id, std::pair<std::vector<float>, std::vector<float>>> state_;
};

// Steps with residual-style feedback on W ranks: after each step, the sum over
// ranks of what is held back plus W times the result equals the sum over ranks
// of the compensated inputs (g + what was held back before), element by element.
template <class Codec, class Feedback, class Error>
void check_mass_invariant(int world, const Codec& codec, Feedback feedback, Error error_of)
{
  CAPTURE(world);
  const terse::layout& shape = mixed_layout();
  constexpr int steps = 5;
  const std::size_t n = shape.total();
  // [step][rank]: the result, and what is held back after the step (0 on dense tensors)
  std::vector<std::vector<std::vector<float>>> results(steps, std::vector<std::vector<float>>(world));
  std::vector<std::vector<std::vector<float>>> held(steps, std::vector<std::vector<float>>(world));
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce<Codec, Feedback> sync(t, shape, reduce_scatter, codec, feedback);
    const auto r = static_cast<std::size_t>(t.rank());
    for (int step = 0; step < steps; ++step) {
      std::vector<float> g = gradient(n, t.rank(), step);
      sync.average(host_span<float>(g));
      results[static_cast<std::size_t>(step)][r] = g;
      std::vector<float> e(n, 0.0f);
      for (const terse::segment& seg : shape.segments()) {
        if (seg.compressed) {
          const host_span<const float> kept = error_of(sync.feedback(), seg.id, seg.count);
          std::copy(kept.begin(), kept.end(), e.begin() + static_cast<std::ptrdiff_t>(seg.offset));
        }
      }
      held[static_cast<std::size_t>(step)][r] = e;
    }
  });
  double worst = 0;
  bool dropped_something = false;
  for (int step = 0; step < steps; ++step) {
    std::vector<std::vector<float>> grads;
    for (int r = 0; r < world; ++r) {
      grads.push_back(gradient(n, r, step));
    }
    for (const terse::segment& seg : shape.segments()) {
      if (!seg.compressed) {
        continue;
      }
      for (std::size_t i = seg.offset; i < seg.offset + seg.count; ++i) {
        double compensated = 0, kept = 0, scale = 0;
        for (int r = 0; r < world; ++r) {
          const double before = step == 0 ? 0.0 : held[static_cast<std::size_t>(step - 1)][r][i];
          const double g = grads[static_cast<std::size_t>(r)][i];
          compensated += g + before;
          kept += held[static_cast<std::size_t>(step)][r][i];
          scale += std::abs(g) + std::abs(before);
        }
        const double result = results[static_cast<std::size_t>(step)][0][i];
        dropped_something |= result != compensated / world;
        worst = std::max(worst, std::abs(kept + world * result - compensated) / (scale + 1e-30));
      }
    }
  }
  CHECK(dropped_something);  // re-selection and top-k drop mass: the check is not vacuous
  CHECK(worst < 4e-7);       // float rounding of the sums, relative to the magnitudes summed
}

}  // namespace

TEST_CASE("allreduce_config prints its sparse aggregation; allgather is the default")
{
  std::ostringstream text;
  text << terse::allreduce_config{.sparse = sparse_aggregation::reduce_scatter};
  CHECK(text.str().find("sparse=reduce_scatter") != std::string::npos);
  CHECK(terse::allreduce_config{}.sparse == sparse_aggregation::allgather);
  static_assert(terse::concepts::fixed_size_compressor<terse::compress::topk>);
  static_assert(!terse::concepts::fixed_size_compressor<terse::compress::threshold>);
  static_assert(!terse::concepts::fixed_size_compressor<terse::compress::dgc>);
}

TEST_CASE("device buffers refuse the sparse reduce-scatter with errc::unsupported")
{
  using terse::aggregation;
  bool refused = false;
  try {
    terse::detail::check_device_aggregation(sparse_aggregation::reduce_scatter, aggregation::gather_only);
  } catch (const terse::error& e) {
    refused = e.code() == terse::errc::unsupported && std::string(e.what()).find("host buffers") != std::string::npos;
  }
  CHECK(refused);
  CHECK_NOTHROW(terse::detail::check_device_aggregation(sparse_aggregation::allgather, aggregation::gather_only));
  CHECK_NOTHROW(terse::detail::check_device_aggregation(sparse_aggregation::reduce_scatter, aggregation::summable));
}

TEST_CASE("sparse reduce-scatter equals the serial reference bit for bit: top-k, threshold and DGC with residual")
{
  for (const int world : {1, 3, 8}) {
    check_against_reference<terse::compress::topk, terse::feedback::residual>(world, mixed_layout(),
                                                                              {.density = 0.02f});
    check_against_reference<terse::compress::threshold, terse::feedback::residual>(world, mixed_layout(),
                                                                                   {.tau = 0.006f});
    check_against_reference<terse::compress::dgc, terse::feedback::residual>(world, mixed_layout(), {.density = 0.02f});
  }
}

TEST_CASE("sparse reduce-scatter equals the reference without feedback, non-fused, and with fewer values than ranks")
{
  check_against_reference<terse::compress::topk, terse::feedback::none>(3, mixed_layout(), {.density = 0.05f});
  check_against_reference<terse::compress::dgc, terse::feedback::none>(8, mixed_layout(), {.density = 0.01f});
  // periodic_flush<residual> is not fused: compensate, commit, then hold_back
  check_against_reference<terse::compress::topk, terse::feedback::periodic_flush<>>(3, mixed_layout(),
                                                                                    {.density = 0.02f});
  static const std::vector<std::size_t> tiny{5};
  static const terse::layout five(tiny, 16);  // 3 of 8 shards are empty
  check_against_reference<terse::compress::topk, terse::feedback::residual>(8, five, {.density = 0.5f});
  check_against_reference<terse::compress::threshold, terse::feedback::residual>(8, five, {.tau = 0.004f});
}

TEST_CASE("the held-back mass plus W times the result is the compensated mass, over several steps")
{
  const auto residual_error = [](terse::feedback::residual& f, terse::bucket_id id, std::size_t n) {
    return f.error(id, n);
  };
  for (const int world : {3, 8}) {
    check_mass_invariant(world, terse::compress::topk{.density = 0.02f}, terse::feedback::residual{}, residual_error);
    check_mass_invariant(world, terse::compress::threshold{.tau = 0.006f}, terse::feedback::residual{}, residual_error);
    check_mass_invariant(world, terse::compress::dgc{.density = 0.02f}, terse::feedback::residual{}, residual_error);
  }
  // the non-fused path (hold_back after commit) and a rule without hold_back
  check_mass_invariant(
      3, terse::compress::topk{.density = 0.02f}, terse::feedback::periodic_flush<>(1000),
      [](terse::feedback::periodic_flush<>& f, terse::bucket_id id, std::size_t n) { return f.inner().error(id, n); });
  check_mass_invariant(3, terse::compress::topk{.density = 0.02f}, plain_residual{},
                       [](plain_residual& f, terse::bucket_id id, std::size_t n) { return f.error(id, n); });
}

TEST_CASE("bytes each rank sends: the formula, headers counted, for fixed and variable payload sizes")
{
  // top-k: shard d's frame (9 + 24 + 8 k_d) to each owner d, then the
  // owner's frame (9 + 24 + 8 k_r) to every rank; threshold adds an 8-byte
  // size before each, and its counts are the reference's.
  const std::vector<std::size_t> sizes{10007};
  const terse::layout shape(sizes, 1 << 20);
  const auto check = [&](int world, auto codec) {
    CAPTURE(world);
    using codec_t = decltype(codec);
    reference<codec_t> serial(world, shape, codec, false);
    std::vector<std::vector<float>> grads;
    for (int r = 0; r < world; ++r) {
      grads.push_back(gradient(shape.total(), r, 0));
    }
    (void)serial.step(0, grads);
    std::vector<std::uint64_t> sent(static_cast<std::size_t>(world));
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::metered metered(t);
      terse::allreduce<codec_t, terse::feedback::none, decltype(metered)> sync(metered, shape, reduce_scatter, codec);
      std::vector<float> g = grads[static_cast<std::size_t>(t.rank())];
      sync.average(host_span<float>(g));
      sent[static_cast<std::size_t>(t.rank())] = metered.counts().total().bytes_sent;
    });
    for (int r = 0; r < world; ++r) {
      CAPTURE(r);
      CHECK(sent[static_cast<std::size_t>(r)] == serial.bytes_sent(r));
      if constexpr (terse::concepts::fixed_size_compressor<codec_t>) {
        std::uint64_t formula = 0;
        const auto frame = [&](int s) {
          const std::size_t m = terse::detail::block_of(10007, world, s).count;
          return 9 + 24 + 8 * terse::detail::topk_count(codec.density, m);
        };
        for (int d = 0; d < world; ++d) {
          formula += d == r ? 0 : frame(d) + frame(r);
        }
        CHECK(sent[static_cast<std::size_t>(r)] == formula);
      }
    }
  };
  for (const int world : {1, 3, 8}) {
    check(world, terse::compress::topk{.density = 0.01f});
    check(world, terse::compress::threshold{.tau = 0.008f});
  }
}

TEST_CASE("at 1 % density the bytes per rank barely grow from W = 8 to 64 and stay below the allgather's from W = 16")
{
  // n = 2^16 here (64 threads on two cores under sanitizers); n = 2^22 is
  // measured by bench_compressed_vs_dense (docs/benchmarks.md).
  const terse::layout shape = terse::layout::single(std::size_t{1} << 16);
  const auto bytes_per_rank = [&](int world, const terse::allreduce_config& config) {
    std::vector<std::uint64_t> sent(static_cast<std::size_t>(world));
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::metered metered(t);
      terse::allreduce<terse::compress::topk, terse::feedback::residual, decltype(metered)> sync(
          metered, shape, config, terse::compress::topk{.density = 0.01f});
      std::vector<float> g = gradient(shape.total(), t.rank(), 0);
      sync.average(host_span<float>(g));
      sent[static_cast<std::size_t>(t.rank())] = metered.counts().total().bytes_sent;
    });
    return *std::max_element(sent.begin(), sent.end());
  };
  const std::uint64_t at8 = bytes_per_rank(8, reduce_scatter);
  const std::uint64_t at64 = bytes_per_rank(64, reduce_scatter);
  MESSAGE("reduce-scatter bytes per rank: W = 8: " << at8 << ", W = 64: " << at64);
  CHECK(at64 <= 2 * at8);
  for (const int world : {16, 32, 64}) {
    const std::uint64_t ours = bytes_per_rank(world, reduce_scatter);
    const std::uint64_t gathered = bytes_per_rank(world, allgather);
    MESSAGE("W = " << world << ": reduce-scatter " << ours << ", allgather " << gathered);
    CHECK(ours < gathered);
  }
}

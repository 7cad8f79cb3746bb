// CHOCO-gossip with terse codecs on a ring of 8, n = 1000 (the setting of
// Koloskova et al.'s consensus experiments): linear convergence where
// compressing the model itself stalls, and the mean kept for every codec.
#include <terse/collective/gossip.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/randomk.hpp>
#include <terse/compress/sign.hpp>
#include <terse/compress/terngrad.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gossip_support.hpp"

namespace {

using terse::host_span;

constexpr int ring_size = 8;
constexpr std::size_t values = 1000;

struct outcome {
  int steps = -1;          // first step with ratio < 1e-6 (-1: never)
  double final_ratio = 0;  // |X_T - 1 xbar|_F / |X_0 - 1 xbar|_F
  double worst_drift = 0;  // max_t max_k |xbar_t - xbar_0| / max|x_0|
};

template <class Codec>
outcome run_choco(Codec codec, double gamma, int steps)
{
  outcome out;
  const std::vector<double> mean0 = gossip_test::start_mean(ring_size, values);
  terse::run_local(ring_size, [&](terse::local_transport& t) {
    terse::gossip mix(t, values, terse::topology::ring(ring_size),
                      terse::mixer::choco<Codec>{.codec = codec, .gamma = gamma}, terse::elements<double>{});
    std::vector<double> x = gossip_test::start_vector<double>(t.rank(), values);
    std::vector<double> peak(1, gossip_test::max_abs(x));
    t.allreduce(host_span<double>(peak), terse::reduce_op::max);
    const double d0 = mix.consensus_distance(host_span<const double>(x));
    std::vector<double> mean(values);
    for (int s = 1; s <= steps; ++s) {
      mix.mix(host_span<double>(x));
      const double ratio = std::sqrt(mix.consensus_distance(host_span<const double>(x)) / d0);
      const double drift = gossip_test::mean_drift(t, x, mean0, mean);
      if (t.rank() == 0) {
        out.worst_drift = std::max(out.worst_drift, drift / peak[0]);
        out.final_ratio = ratio;
        if (out.steps < 0 && ratio < 1e-6) {
          out.steps = s;
        }
      }
      if (ratio < 1e-9) {
        break;  // every rank sees the same ratio, so all stop together
      }
    }
  });
  return out;
}

// Gossip of compressed models without public copies: x_i <- M_ii x_i +
// sum_j M_ij C(x_j). The compression error never shrinks and the mean is
// lost, so the ranks never reach the average they started from. Returns
// |X_T - 1 xbar_0|_F / |X_0 - 1 xbar_0|_F.
template <class Codec>
double run_naive(Codec codec, int steps)
{
  const terse::topology::graph ring = terse::topology::ring(ring_size);
  std::vector<std::vector<double>> x(ring_size);
  for (int r = 0; r < ring_size; ++r) {
    x[static_cast<std::size_t>(r)] = gossip_test::start_vector<double>(r, values);
  }
  const std::vector<double> mean0 = gossip_test::start_mean(ring_size, values);
  auto distance = [&] {
    double d = 0;
    for (std::size_t i = 0; i < values; ++i) {
      for (const auto& xr : x) {
        d += (xr[i] - mean0[i]) * (xr[i] - mean0[i]);
      }
    }
    return d;
  };
  const double d0 = distance();
  std::vector<std::vector<float>> decoded(ring_size, std::vector<float>(values));
  std::vector<float> in(values);
  std::vector<std::byte> payload(codec.max_encoded_bytes(values));
  const terse::topology::mixing_round m = ring.round(0);
  const auto dense = m.dense();
  for (int s = 0; s < steps; ++s) {
    for (int r = 0; r < ring_size; ++r) {
      terse::codec_context ctx{.seed = 3, .step = static_cast<std::uint64_t>(s), .rank = r, .world = ring_size};
      for (std::size_t i = 0; i < values; ++i) {
        in[i] = static_cast<float>(x[static_cast<std::size_t>(r)][i]);
      }
      const std::size_t bytes = codec.encode(ctx, host_span<const float>(in), host_span<std::byte>(payload));
      std::fill(decoded[static_cast<std::size_t>(r)].begin(), decoded[static_cast<std::size_t>(r)].end(), 0.0f);
      codec.decode_add(ctx, host_span<const std::byte>(payload.data(), bytes),
                       host_span<float>(decoded[static_cast<std::size_t>(r)]));
    }
    std::vector<std::vector<double>> next = x;
    for (std::size_t r = 0; r < ring_size; ++r) {
      for (std::size_t i = 0; i < values; ++i) {
        double v = dense[r][r] * x[r][i];
        for (std::size_t j = 0; j < ring_size; ++j) {
          if (j != r && dense[r][j] != 0) {
            v += dense[r][j] * decoded[j][i];
          }
        }
        next[r][i] = v;
      }
    }
    x = std::move(next);
  }
  return std::sqrt(distance() / d0);
}

}  // namespace

TEST_CASE("CHOCO reaches consensus at a linear rate with every kind of codec; naive compressed gossip stalls")
{
  namespace compress = terse::compress;
  struct row {
    std::string name;
    outcome result;
    int budget;
  };
  std::vector<row> rows;
  rows.push_back({"uncompressed", run_choco(compress::identity{}, 1.0, 70), 70});
  rows.push_back({"qsgd<15>", run_choco(compress::qsgd<15>{}, 0.8, 200), 200});
  rows.push_back({"top-10%", run_choco(compress::topk{.density = 0.1f}, 0.3, 300), 300});
  rows.push_back(
      {"random-10% (contractive)", run_choco(compress::randomk{.density = 0.1, .unbiased = false}, 0.08, 1000), 1000});
  for (const row& r : rows) {
    MESSAGE(r.name << ": ratio < 1e-6 after " << r.result.steps << " steps; worst mean drift " << r.result.worst_drift);
    CAPTURE(r.name);
    REQUIRE(r.result.steps > 0);
    REQUIRE(r.result.steps <= r.budget);
    REQUIRE(r.result.worst_drift <= 1e-12);
  }
  const double naive = run_naive(compress::topk{.density = 0.1f}, 300);
  MESSAGE("naive top-10% gossip after 300 steps: distance to the mean " << naive);
  REQUIRE(naive > 1e-2);
}

TEST_CASE("CHOCO keeps the mean with every codec it accepts")
{
  namespace compress = terse::compress;
  auto check = [](std::string name, auto codec, double gamma) {
    const outcome o = run_choco(codec, gamma, 40);
    CAPTURE(name);
    REQUIRE(o.worst_drift <= 1e-12);
    REQUIRE(o.final_ratio < 1.0);  // and it mixes
  };
  check("identity", compress::identity{}, 1.0);
  check("topk", compress::topk{.density = 0.05f}, 0.1);
  check("randomk unbiased (scaled by k/n)", compress::randomk{.density = 0.1}, 0.05);
  check("randomk contractive", compress::randomk{.density = 0.1, .unbiased = false}, 0.05);
  check("qsgd<7>", compress::qsgd<7>{}, 0.5);
  check("uniform<4>", compress::uniform<4>{}, 0.5);
  check("terngrad", compress::terngrad{}, 0.2);
  check("sign", compress::sign{}, 0.2);
  check("cast fp16", compress::cast_fp16{}, 1.0);
}

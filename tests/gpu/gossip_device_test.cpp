// Gossip of device buffers (terse::staged_gossip): W ranks as threads that
// share this GPU, each mixing a device vector on its own stream over the
// local transport. Every round must give the bits the same gossip gives on
// host buffers, and a stream stuck past the deadline must be a timeout.
#include <terse/collective/gossip_cuda.hpp>
#include <terse/compress/topk.hpp>
#include <terse/schedule/periodic.hpp>
#include <terse/topology.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "device_vector.hpp"

namespace {

std::vector<double> start(int rank, std::size_t n)
{
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = 0.001 * static_cast<double>((i * 7919 + static_cast<std::size_t>(rank) * 104729) % 2003) - 1.0;
  }
  return x;
}

// Five rounds of `Mixer` on `graph`, on device buffers (staged) or host buffers.
template <class Mixer>
std::vector<std::vector<double>> five_rounds(const terse::topology::graph& g, const Mixer& mixer, bool on_device)
{
  const std::size_t n = 3001;
  std::vector<std::vector<double>> out(static_cast<std::size_t>(g.world()));
  terse::run_local(g.world(), [&](terse::local_transport& t) {
    terse::gossip mix(t, n, g, mixer, terse::elements<double>{}, terse::gossip_options{.seed = 9});
    std::vector<double> x = start(t.rank(), n);
    if (on_device) {
      terse::cuda_stream stream;
      terse_test::device_vector<double> d(x);
      terse::staged_gossip device_mix(mix);
      for (int round = 0; round < 5; ++round) {
        device_mix.mix(d.span(), stream.get());
      }
      TERSE_CUDA_TRY(cudaStreamSynchronize(stream.get()));
      x = d.download();
    } else {
      for (int round = 0; round < 5; ++round) {
        mix.mix(terse::host_span<double>(x));
      }
    }
    out[static_cast<std::size_t>(t.rank())] = x;
  });
  return out;
}

}  // namespace

TEST_CASE("staged gossip on device buffers gives the host's bits for every mixer, W = 4 ranks on one GPU")
{
  namespace topo = terse::topology;
  CHECK(five_rounds(topo::ring(4), terse::mixer::average{}, true) ==
        five_rounds(topo::ring(4), terse::mixer::average{}, false));
  CHECK(five_rounds(topo::one_peer_exponential(4), terse::mixer::push_sum{}, true) ==
        five_rounds(topo::one_peer_exponential(4), terse::mixer::push_sum{}, false));
  const auto choco = terse::mixer::choco{terse::compress::topk{.density = 0.1f}, 0.3};
  CHECK(five_rounds(topo::ring(4), choco, true) == five_rounds(topo::ring(4), choco, false));
}

TEST_CASE("staged gossip: the schedule decides, and a skipped step leaves the device buffer as it was")
{
  terse::run_local(2, [&](terse::local_transport& t) {
    const std::vector<double> x0(16, static_cast<double>(t.rank()));
    terse::gossip mix(t, x0.size(), terse::topology::ring(2), terse::elements<double>{}, terse::schedule::periodic{2});
    terse::staged_gossip device_mix(mix);
    terse::cuda_stream stream;
    terse_test::device_vector<double> d(x0);
    CHECK(device_mix.on_parameters(d.span(), stream.get()) == terse::sync_action::skip);
    TERSE_CUDA_TRY(cudaStreamSynchronize(stream.get()));
    CHECK(d.download() == x0);
    CHECK(device_mix.on_parameters(d.span(), stream.get()) == terse::sync_action::average);
    TERSE_CUDA_TRY(cudaStreamSynchronize(stream.get()));
    CHECK(d.download() == std::vector<double>(16, 0.5));
  });
}

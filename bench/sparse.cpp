// Host throughput of the sparsifiers (topk, threshold, dgc) at 1% density on
// 2^24 and 2^26 floats, beside memcpy of the same buffer. bench_gradient is
// uniform in [-0.005, 0.005), so tau = 0.00495 keeps 1% of it.
#include <terse/compress/dgc.hpp>
#include <terse/compress/threshold.hpp>
#include <terse/compress/topk.hpp>

#include "codec_bench_support.hpp"

int main(int argc, char** argv)
{
  using namespace terse;
  bench::register_memcpy_references();
  bench::register_codec("topk(0.01)", [] { return compress::topk{.density = 0.01f}; });
  bench::register_codec("threshold(0.00495)", [] { return compress::threshold{.tau = 0.00495f}; });
  bench::register_codec("dgc(0.01)/reused", [] { return compress::dgc{.density = 0.01f}; });
  bench::register_codec("dgc(0.01)/sampled", [] { return compress::dgc{.density = 0.01f, .reuse_threshold = false}; });
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

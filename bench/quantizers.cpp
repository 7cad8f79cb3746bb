// Host throughput of the quantizers (encode, decode, fused residual encode)
// on 2^24 and 2^26 floats beside memcpy of the same buffer: cast<fp16>,
// cast<bf16>, uniform<8/4/2>, qsgd at 8, 4 and 2 bits, and adaptive (whose
// benchmark steps stay in its first, 2-bit stage).
#include <terse/compress/adaptive.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/uniform.hpp>

#include <benchmark/benchmark.h>

#include "codec_bench_support.hpp"

int main(int argc, char** argv)
{
  using namespace terse::compress;
  terse::bench::register_memcpy_references();
  terse::bench::register_codec("cast<fp16>", [] { return cast_fp16{}; });
  terse::bench::register_codec("cast<bf16>", [] { return cast_bf16{}; });
  terse::bench::register_codec("uniform<8>", [] { return uniform<8>{}; });
  terse::bench::register_codec("uniform<4>", [] { return uniform<4>{}; });
  terse::bench::register_codec("uniform<2>", [] { return uniform<2>{}; });
  terse::bench::register_codec("qsgd<127>", [] { return qsgd<127>{}; });
  terse::bench::register_codec("qsgd<7>", [] { return qsgd<7>{}; });
  terse::bench::register_codec("qsgd<1>", [] { return qsgd<1>{}; });
  terse::bench::register_codec("adaptive", [] { return adaptive{}; });
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

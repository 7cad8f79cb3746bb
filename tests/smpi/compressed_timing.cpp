// Compressed against dense under SimGrid's SMPI, with and without the
// engine's overlap, in one run: for each codec, one terse::allreduce over a
// layout of B equal buckets, three timed steps after a warm-up step:
//
//   comm      the step alone (no backward): the network time
//   sync      a modelled backward pass for all B buckets, then the step
//   overlap   after each bucket's backward, start that bucket; wait at the end
//
// The backward pass is declared compute (smpi_execute_flops at the host's
// speed), T/B per bucket, split into `polls + 1` slices with a poll() of the
// buckets in flight between slices. T is given in ms, or `dense`: dense's own
// comm time in this run (the backward then lasts as long as dense's
// exchange, where overlap can hide the most of it). Run it with
// --cfg=smpi/simulate-computation:no: only the declared backward is charged,
// so codec compute is left out (network only). Each time is from the moment
// the last rank starts to the moment the last rank finishes.
//
// Checks, every rank, every timed step: the result is bit-identical on all
// ranks (a hash compared by one allreduce), and dense's is the exact mean
// (integer inputs; checked when W is a power of two, where the mean is
// exact in float). Exit 1 when a check
// fails or, with max_overlap_over_sync, a codec's overlap step is slower than
// that times its sync step.
//
// `lean` (for W = 64, where every simulated step takes minutes) skips the
// warm-up step and the sync step: the backward is a fixed delay on every
// rank after a barrier, so the sync step is backward + comm (the full mode
// measures both, and they agree).
//
// Usage: smpi_compressed_timing <floats> <buckets> <backward_ms|dense> <codecs|all> [polls]
//                               [max_overlap_over_sync] [lean]
//   max_overlap_over_sync: 0 or less for no limit
//   codecs: comma-separated of dense bf16 fp16 uniform8 uniform4 uniform2 qsgd127 qsgd7 terngrad
//           sign topk topk_rs dgc randomk powersgd (dense always runs first)
// Rank 0 prints one markdown row per codec (ratios against dense).
#include <terse/collective/allreduce.hpp>
#include <terse/compress/cast.hpp>
#include <terse/compress/dgc.hpp>
#include <terse/compress/powersgd.hpp>
#include <terse/compress/qsgd.hpp>
#include <terse/compress/randomk.hpp>
#include <terse/compress/sign.hpp>
#include <terse/compress/terngrad.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/none.hpp>
#include <terse/feedback/residual.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/mpi.hpp>

#include <mpi.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <simgrid/host.h>
#include <string>
#include <vector>

#include "smpi_timing.hpp"

namespace {

using transport = terse::metered<terse::mpi_transport&>;

struct options {
  std::size_t floats = 0;
  std::size_t buckets = 1;
  std::optional<double> backward_ms;  ///< nullopt: dense's comm time
  int polls = 1;                      ///< poll() calls inside each bucket's backward
  bool lean = false;                  ///< no warm-up step, sync = backward + comm (file comment)
};

struct outcome {
  double comm_ms = 0;
  double sync_ms = 0;
  double overlap_ms = 0;
  double backward_ms = 0;
  std::uint64_t bytes_sent = 0;  ///< rank 0, one step
  bool identical = true;         ///< every step's result the same bits on every rank
  bool exact = true;             ///< dense only: every step's result the exact mean
};

// True on every rank when `values` holds the same bits on every rank.
bool same_on_every_rank(const std::vector<float>& values)
{
  std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a over the bit patterns
  for (const float v : values) {
    hash = (hash ^ std::bit_cast<std::uint32_t>(v)) * 0x100000001b3ull;
  }
  std::uint64_t both[2] = {hash, ~hash};  // max(h) == ~max(~h) only when all equal
  MPI_Allreduce(MPI_IN_PLACE, both, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  return both[0] == ~both[1];
}

// True on every rank when every rank holds the exact mean of input(): it
// depends on i only through i mod 13, so 13 sums cover the buffer.
bool exact_mean_everywhere(const std::vector<float>& values, int world)
{
  float want[13];
  for (std::size_t residue = 0; residue < 13; ++residue) {
    float sum = 0.0f;
    for (int r = 0; r < world; ++r) {
      sum += smpi_timing::input(r, residue);
    }
    want[residue] = sum / static_cast<float>(world);
  }
  int ok = 1;
  for (std::size_t i = 0; i < values.size() && ok != 0; ++i) {
    ok = values[i] == want[i % 13] ? 1 : 0;
  }
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return ok != 0;
}

// Declared compute: `seconds` of this host's time, charged by SMPI.
void compute_for(double seconds)
{
  if (seconds > 0.0) {
    smpi_execute_flops(seconds * sg_host_get_speed(sg_host_self()));
  }
}

template <class Sync>
outcome measure(Sync& sync, transport& t, const options& o, bool dense)
{
  outcome out;
  const int rank = t.rank();
  std::vector<float> values(sync.shape().total());
  const auto all = [&] { return terse::host_span<float>(values); };
  const auto check = [&] {
    out.identical = same_on_every_rank(values) && out.identical;
    const bool exact_expected = dense && std::has_single_bit(static_cast<unsigned>(t.size()));
    out.exact = (!exact_expected || exact_mean_everywhere(values, t.size())) && out.exact;
  };
  if (!o.lean) {
    smpi_timing::fill(values, rank);
    sync.average(all());  // warm-up: scratch and feedback state exist
  }
  t.reset();
  out.comm_ms = smpi_timing::step_ms(values, rank, [&] { sync.average(all()); });
  out.bytes_sent = t.counts().total().bytes_sent;
  check();
  out.backward_ms = o.backward_ms.value_or(out.comm_ms);
  const double slice_s =
      1e-3 * out.backward_ms / static_cast<double>(o.buckets * static_cast<std::size_t>(o.polls + 1));
  // One bucket's backward; `between` runs between its slices.
  const auto backward = [&](auto&& between) {
    for (int s = 0; s <= o.polls; ++s) {
      compute_for(slice_s);
      if (s < o.polls) {
        between();
      }
    }
  };
  if (o.lean) {
    out.sync_ms = out.backward_ms + out.comm_ms;
  } else {
    out.sync_ms = smpi_timing::step_ms(values, rank, [&] {
      for (std::size_t b = 0; b < o.buckets; ++b) {
        backward([] {});
      }
      sync.average(all());
    });
    check();
  }
  out.overlap_ms = smpi_timing::step_ms(values, rank, [&] {
    for (const terse::bucket& b : sync.shape().buckets()) {
      backward([&] { sync.poll(); });
      sync.start(b.id, all().subspan(b.offset, b.count));
    }
    sync.wait_all();
  });
  check();
  return out;
}

template <class Codec, class Feedback>
outcome run(transport& t, const terse::layout& shape, const options& o, Codec codec,
            terse::allreduce_config config = {})
{
  terse::allreduce<Codec, Feedback, transport> sync(t, shape, config, codec);
  return measure(sync, t, o, std::is_same_v<Codec, terse::compress::identity>);
}

// Each codec with the feedback it is used with (bench/compressed_vs_dense.cpp):
// none for the casts and unbiased quantisers, residual for the biased ones,
// momentum correction for DGC.
outcome run(const std::string& codec, transport& t, const terse::layout& shape, const options& o)
{
  namespace c = terse::compress;
  using terse::feedback::none;
  using terse::feedback::residual;
  const terse::allreduce_config by_reduce_scatter{.sparse = terse::sparse_aggregation::reduce_scatter};
  if (codec == "dense") {
    return run<c::identity, none>(t, shape, o, {});
  }
  if (codec == "bf16") {
    return run<c::cast_bf16, none>(t, shape, o, {});
  }
  if (codec == "fp16") {
    return run<c::cast_fp16, none>(t, shape, o, {});
  }
  if (codec == "uniform8") {
    return run<c::uniform<8>, none>(t, shape, o, {});
  }
  if (codec == "uniform4") {
    return run<c::uniform<4>, none>(t, shape, o, {});
  }
  if (codec == "uniform2") {
    return run<c::uniform<2>, none>(t, shape, o, {});
  }
  if (codec == "qsgd127") {
    return run<c::qsgd<127>, none>(t, shape, o, {});
  }
  if (codec == "qsgd7") {
    return run<c::qsgd<7>, none>(t, shape, o, {});
  }
  if (codec == "terngrad") {
    return run<c::terngrad, none>(t, shape, o, {});
  }
  if (codec == "sign") {
    return run<c::sign, residual>(t, shape, o, {});
  }
  if (codec == "topk") {
    return run<c::topk, residual>(t, shape, o, {.density = 0.01f});
  }
  if (codec == "topk_rs") {
    return run<c::topk, residual>(t, shape, o, {.density = 0.01f}, by_reduce_scatter);
  }
  if (codec == "dgc") {
    return run<c::dgc, terse::feedback::dgc_momentum>(t, shape, o, {.density = 0.001f});
  }
  if (codec == "randomk") {
    return run<c::randomk, residual>(t, shape, o, {.density = 0.01});
  }
#if defined(TERSE_WITH_BLAS)
  if (codec == "powersgd") {
    return run<c::powersgd, residual>(t, shape, o, {.rank = 2});
  }
#endif
  TERSE_FAIL(terse::errc::invalid_argument,
             "unknown codec '" + codec + "' (powersgd needs terse::blas: a BLAS with cblas.h at configure time)");
}

// The codecs to run, dense first.
std::vector<std::string> codec_list(const std::string& list)
{
  std::string every = "bf16,fp16,uniform8,uniform4,uniform2,qsgd127,qsgd7,terngrad,sign,topk,topk_rs,dgc,randomk";
#if defined(TERSE_WITH_BLAS)
  every += ",powersgd";
#endif
  std::vector<std::string> codecs{"dense"};
  for (const std::string& item : smpi_timing::split_list(list == "all" ? every : list)) {
    if (item != "dense") {
      codecs.push_back(item);
    }
  }
  return codecs;
}

}  // namespace

int main(int argc, char** argv)
{
  terse::mpi_session session(&argc, &argv);
  int rank = 0;
  int world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (argc < 5) {
    if (rank == 0) {
      std::fprintf(stderr,
                   "usage: %s <floats> <buckets> <backward_ms|dense> <codecs|all> [polls] [max_overlap_over_sync] "
                   "[lean]\n",
                   argv[0]);
    }
    return 2;
  }
  options o;
  o.floats = std::stoul(argv[1]);
  o.buckets = std::max<std::size_t>(1, std::stoul(argv[2]));
  if (std::strcmp(argv[3], "dense") != 0) {
    o.backward_ms = std::stod(argv[3]);
  }
  const std::vector<std::string> codecs = codec_list(argv[4]);
  o.polls = argc > 5 ? std::max(0, std::stoi(argv[5])) : 1;
  const double max_overlap_over_sync = argc > 6 ? std::stod(argv[6]) : -1.0;
  o.lean = argc > 7 && std::strcmp(argv[7], "lean") == 0;

  const std::vector<std::size_t> sizes(o.buckets, o.floats / o.buckets);
  const terse::layout shape(sizes, o.floats / o.buckets);
  terse::mpi_transport mpi(MPI_COMM_WORLD, terse::transport_options{.checked = false});
  transport t(mpi);

  outcome dense;
  int failures = 0;
  for (const std::string& codec : codecs) {
    const outcome r = run(codec, t, shape, o);
    if (codec == "dense") {
      dense = r;
      o.backward_ms = r.backward_ms;  // `dense`: every codec gets dense's backward
      if (rank == 0) {
        std::printf("W=%d floats=%zu buckets=%zu backward_ms=%.3f polls_per_bucket=%d%s (network only)\n\n", world,
                    shape.total(), o.buckets, r.backward_ms, o.polls,
                    o.lean ? " lean: no warm-up, sync step = backward + comm" : "");
        std::printf(
            "| codec | bytes sent / rank | comm ms | vs dense | sync step ms | vs dense | overlap step ms "
            "| vs dense | overlap / sync | checks |\n");
        std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
      }
    }
    const bool slow_overlap = max_overlap_over_sync > 0.0 && r.overlap_ms > max_overlap_over_sync * r.sync_ms;
    const bool bad = !r.identical || !r.exact || slow_overlap;
    failures += bad ? 1 : 0;
    if (rank == 0) {
      std::printf("| %s | %llu | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %s%s%s |\n", codec.c_str(),
                  static_cast<unsigned long long>(r.bytes_sent), r.comm_ms, r.comm_ms / dense.comm_ms, r.sync_ms,
                  r.sync_ms / dense.sync_ms, r.overlap_ms, r.overlap_ms / dense.overlap_ms, r.overlap_ms / r.sync_ms,
                  r.identical ? "identical" : "DIFFER across ranks",
                  codec != "dense"                                     ? ""
                  : !std::has_single_bit(static_cast<unsigned>(world)) ? ", mean not checked (W not a power of two)"
                  : r.exact                                            ? ", exact"
                                                                       : ", NOT exact",
                  slow_overlap ? ", overlap SLOWER" : "");
      std::fflush(stdout);
    }
  }
  if (rank == 0) {
    std::printf("\n%d codec(s) failed a check\n", failures);
  }
  return failures == 0 ? 0 : 1;
}

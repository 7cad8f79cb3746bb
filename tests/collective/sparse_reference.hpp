#pragma once
// What the sparse reduce-scatter's tests share (sparse_allreduce_test.cpp,
// sparse_failures_test.cpp): the settings, a layout with segments no world
// size divides, gradients, and the serial reference of the algorithm.

#include <terse/collective/allreduce.hpp>
#include <terse/core/concepts.hpp>
#include <terse/core/philox.hpp>
#include <terse/transport/detail/partition.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

namespace sparse_test {

using terse::host_span;
using terse::sparse_aggregation;

inline constexpr std::uint64_t seed = 0x5eed;
inline const terse::allreduce_config reduce_scatter{.seed = seed, .sparse = sparse_aggregation::reduce_scatter};
inline const terse::allreduce_config allgather{.seed = seed, .sparse = sparse_aggregation::allgather};

inline const terse::layout& mixed_layout()
{
  // compressed segments of 3001, 1537 and 4099 values (none divisible by 3
  // or 8) between small dense tensors
  static const std::vector<std::size_t> sizes{3001, 10, 1537, 7, 4099};
  static const terse::layout shape(sizes, 4600, /*dense_below=*/64);
  return shape;
}

inline std::vector<float> gradient(std::size_t n, int rank, int step)
{
  const terse::random_stream s{
      .seed = 17, .step = static_cast<std::uint32_t>(step), .stream = static_cast<std::uint32_t>(rank)};
  std::vector<float> g(n);
  for (std::size_t i = 0; i < n; ++i) {
    g[i] = (s.uniform(i) - 0.5f) * 0.02f * static_cast<float>(1 + (i / 97) % 5);
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

/// The serial reference of the sparse reduce-scatter with the codec's own
/// encode and decode: every rank's shard payloads, each owner's rank-order
/// average and re-selection, every rank's decode of the W shards, and
/// residual feedback (e = p - decode(own) plus, on the owner's shard,
/// W (average - decoded re-selection)). One codec per rank (DGC keeps state).
template <class Codec>
class reference {
 public:
  reference(int world, const terse::layout& shape, const Codec& codec, bool feedback)
      : world_(world),
        shape_(shape),
        codecs_(static_cast<std::size_t>(world), codec),
        held_(static_cast<std::size_t>(world), std::vector<std::vector<float>>(shape.segments().size())),
        sent_(static_cast<std::size_t>(world)),
        feedback_(feedback)
  {
  }

  /// One step; the result on the compressed segments (dense ones left 0).
  std::vector<float> step(std::uint64_t step, const std::vector<std::vector<float>>& grads)
  {
    std::fill(sent_.begin(), sent_.end(), 0);
    std::vector<float> out(shape_.total(), 0.0f);
    for (std::size_t k = 0; k < shape_.segments().size(); ++k) {
      if (shape_.segments()[k].compressed) {
        segment(step, k, grads, out);
      }
    }
    return out;
  }

  /// What feedback::residual::held_back_squared_norm gives on `rank`.
  double held_back_squared_norm(int rank) const
  {
    std::vector<std::size_t> order(shape_.segments().size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return shape_.segments()[a].id < shape_.segments()[b].id; });
    double sum = 0;
    for (const std::size_t k : order) {
      for (const float v : held_[static_cast<std::size_t>(rank)][k]) {
        sum += static_cast<double>(v) * v;
      }
    }
    return sum;
  }

  /// The bytes `rank` sent to other ranks in the last step (compressed segments).
  std::uint64_t bytes_sent(int rank) const { return sent_[static_cast<std::size_t>(rank)]; }

 private:
  terse::codec_context context(std::uint64_t step, const terse::segment& seg, int rank, std::size_t offset,
                               std::uint32_t phase) const
  {
    terse::codec_context ctx;
    ctx.seed = seed;
    ctx.step = step;
    ctx.bucket = seg.id;
    ctx.rank = rank;
    ctx.world = world_;
    ctx.offset = offset;
    ctx.phase = phase;
    return ctx;
  }

  void segment(std::uint64_t step, std::size_t k, const std::vector<std::vector<float>>& grads, std::vector<float>& out)
  {
    const terse::segment& seg = shape_.segments()[k];
    const std::size_t n = seg.count;
    const auto w = static_cast<std::size_t>(world_);
    std::vector<std::vector<float>> p(w), own(w, std::vector<float>(n, 0.0f));
    std::vector<std::vector<std::vector<std::byte>>> payload(w, std::vector<std::vector<std::byte>>(w));
    for (std::size_t r = 0; r < w; ++r) {
      std::vector<float>& e = held_[r][k];
      e.resize(n, 0.0f);
      p[r].assign(grads[r].begin() + static_cast<std::ptrdiff_t>(seg.offset),
                  grads[r].begin() + static_cast<std::ptrdiff_t>(seg.offset + n));
      for (std::size_t i = 0; i < n && feedback_; ++i) {
        p[r][i] = p[r][i] + e[i];
      }
      for (std::size_t s = 0; s < w; ++s) {
        const terse::detail::block_range shard = terse::detail::block_of(n, world_, static_cast<int>(s));
        const auto ctx = context(step, seg, static_cast<int>(r), shard.begin, 0);
        std::vector<std::byte>& bytes = payload[r][s];
        bytes.resize(codecs_[r].max_encoded_bytes(shard.count));
        bytes.resize(codecs_[r].encode(ctx, host_span<const float>(p[r].data() + shard.begin, shard.count),
                                       host_span<std::byte>(bytes)));
        codecs_[r].decode_add(ctx, host_span<const std::byte>(bytes),
                              host_span<float>(own[r].data() + shard.begin, shard.count));
      }
    }
    const std::uint64_t announcements = terse::concepts::fixed_size_compressor<Codec> ? 0 : 8;
    std::vector<std::vector<float>> average(w);
    std::vector<std::vector<std::byte>> reselected(w);
    for (std::size_t d = 0; d < w; ++d) {
      const terse::detail::block_range shard = terse::detail::block_of(n, world_, static_cast<int>(d));
      average[d].assign(shard.count, 0.0f);
      for (std::size_t r = 0; r < w; ++r) {
        codecs_[d].decode_add(context(step, seg, static_cast<int>(d), shard.begin, 0),
                              host_span<const std::byte>(payload[r][d]), host_span<float>(average[d]));
        if (r != d) {
          sent_[r] += announcements + 9 + payload[r][d].size();
        }
      }
      const float inverse = 1.0f / static_cast<float>(world_);
      for (float& v : average[d]) {
        v *= inverse;
      }
      reselected[d].resize(codecs_[d].max_encoded_bytes(shard.count));
      reselected[d].resize(codecs_[d].encode(context(step, seg, static_cast<int>(d), shard.begin, 1),
                                             host_span<const float>(average[d]), host_span<std::byte>(reselected[d])));
      sent_[d] += (w - 1) * (announcements + 9 + reselected[d].size());
    }
    std::vector<float> result(n, 0.0f);
    for (std::size_t s = 0; s < w; ++s) {
      const terse::detail::block_range shard = terse::detail::block_of(n, world_, static_cast<int>(s));
      codecs_[0].decode_add(context(step, seg, 0, shard.begin, 1), host_span<const std::byte>(reselected[s]),
                            host_span<float>(result.data() + shard.begin, shard.count));
    }
    std::copy(result.begin(), result.end(), out.begin() + static_cast<std::ptrdiff_t>(seg.offset));
    if (!feedback_) {
      return;
    }
    for (std::size_t r = 0; r < w; ++r) {
      std::vector<float>& e = held_[r][k];
      for (std::size_t i = 0; i < n; ++i) {
        e[i] = p[r][i] - own[r][i];
      }
      const terse::detail::block_range mine = terse::detail::block_of(n, world_, static_cast<int>(r));
      for (std::size_t i = 0; i < mine.count; ++i) {
        e[mine.begin + i] += static_cast<float>(world_) * (average[r][i] - result[mine.begin + i]);
      }
    }
  }

  int world_;
  const terse::layout& shape_;
  std::vector<Codec> codecs_;
  std::vector<std::vector<std::vector<float>>> held_;  // [rank][segment]
  std::vector<std::uint64_t> sent_;
  bool feedback_;
};

}  // namespace sparse_test

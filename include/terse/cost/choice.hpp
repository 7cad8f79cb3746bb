#pragma once
/// @file
/// Dense or compressed, decided by the cost model: `cost::choose` ranks
/// dense against candidate codecs for one bucket, and `cost::codec_selector`
/// decides, per segment of an allreduce's layout, whether it goes out with
/// the allreduce's codec or dense, with hysteresis so that a prediction near
/// the break-even point does not flap.
///
/// @code
/// terse::allreduce sync(transport, shape, compress::uniform<4>{}, feedback::residual{});
/// cost::codec_selector pick(shape, transport.size(), compress::uniform<4>{},
///                           cost::step_options{.compute = true, .residual = true},
///                           cost::selection_options{.dense = {.compute = true}});
/// pick.update(cost::cluster::flat(/*gigabits_per_s=*/25.0, /*latency_s=*/20e-6));
/// pick.apply(sync);  // a collective call: every rank, same inputs, same point
/// @endcode
///
/// Every rank decides from the same inputs (the cluster it is given, the
/// world size, the layout), so the choices agree without talking;
/// `allreduce::send_dense` still compares them (one small allreduce) and
/// raises errc::mismatch on every rank where they differ. A segment switched
/// to dense sends its compensated values: the residual its feedback held is
/// flushed into that step, and stays empty while the segment is dense.

#include <terse/collective/layout.hpp>
#include <terse/compress/identity.hpp>
#include <terse/core/error.hpp>
#include <terse/cost/cluster.hpp>
#include <terse/cost/model.hpp>
#include <terse/cost/step_plan.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <utility>
#include <vector>

namespace terse::cost {

/// A codec to weigh against dense, with how its step runs.
template <class Codec>
struct candidate {
  Codec codec;
  step_options options{};
};
template <class Codec>
candidate(Codec, step_options) -> candidate<Codec>;

/// The options `choose` weighed and the fastest.
struct choice {
  std::size_t index = 0;          ///< 0: dense; i >= 1: the i-th candidate
  std::vector<double> seconds{};  ///< each option's predicted step, dense first

  bool dense() const noexcept { return index == 0; }
  double best_seconds() const { return seconds.at(index); }
};

/// Predicts one step of `n` floats on `world` ranks dense (priced with
/// `dense_options`) and with each candidate; picks the fastest (dense on a
/// tie: it is exact).
template <class... Codecs>
choice choose(const cluster& c, int world, std::size_t n, const step_options& dense_options,
              const candidate<Codecs>&... candidates)
{
  choice out;
  out.seconds.reserve(1 + sizeof...(Codecs));
  out.seconds.push_back(predict_dense(c, world, n, dense_options).seconds());
  (out.seconds.push_back(predict(c, world, n, candidates.codec, candidates.options).seconds()), ...);
  for (std::size_t i = 1; i < out.seconds.size(); ++i) {
    if (out.seconds[i] < out.seconds[out.index]) {
      out.index = i;
    }
  }
  return out;
}

/// How a codec_selector decides.
struct selection_options {
  /// A segment changes side only when the other side is predicted faster
  /// by at least this fraction of its current time (0 <= margin < 1).
  double margin = 0.1;
  /// How the dense step is priced (compute on or off, memory speed).
  step_options dense{};
};

/// Per compressed segment of a layout: the allreduce's codec or dense.
template <class Codec>
class codec_selector {
 public:
  codec_selector(const layout& shape, int world, Codec codec, step_options codec_options = {},
                 selection_options options = {})
      : world_(world),
        codec_(std::move(codec)),
        codec_options_(codec_options),
        options_(options),
        dense_(shape.segments().size(), 0),
        seconds_(shape.segments().size(), {0.0, 0.0})
  {
    TERSE_EXPECTS(world >= 1, "a world of at least one rank");
    TERSE_EXPECTS(options.margin >= 0.0 && options.margin < 1.0, "the margin is a fraction in [0, 1)");
    for (const segment& seg : shape.segments()) {
      counts_.push_back(seg.compressed ? seg.count : 0);
    }
  }

  /// Re-decides every compressed segment for cluster `c`; true when any
  /// segment changed side. The first update takes the faster side outright.
  bool update(const cluster& c)
  {
    std::map<std::size_t, std::pair<double, double>> by_count;  // segments of one size share a prediction
    bool changed = false;
    for (std::size_t s = 0; s < counts_.size(); ++s) {
      if (counts_[s] == 0) {
        continue;
      }
      auto [at, fresh] = by_count.try_emplace(counts_[s]);
      if (fresh) {
        at->second = {predict_dense(c, world_, counts_[s], options_.dense).seconds(),
                      predict(c, world_, counts_[s], codec_, codec_options_).seconds()};
      }
      const auto [dense_s, codec_s] = at->second;
      seconds_[s] = at->second;
      const bool was_dense = dense_[s] != 0;
      const bool now_dense = !decided_   ? dense_s <= codec_s
                             : was_dense ? !(codec_s < (1.0 - options_.margin) * dense_s)
                                         : dense_s < (1.0 - options_.margin) * codec_s;
      changed = changed || (decided_ && now_dense != was_dense);
      dense_[s] = now_dense ? 1 : 0;
    }
    decided_ = true;
    return changed;
  }

  /// One flag per layout segment: 1 where it goes out dense.
  std::span<const std::uint8_t> dense_flags() const noexcept { return dense_; }
  bool dense(bucket_id segment) const { return dense_.at(segment) != 0; }
  /// Segment `segment`'s predicted step at the last update: {dense, codec}.
  std::pair<double, double> predicted(bucket_id segment) const { return seconds_.at(segment); }

  /// Hands the flags to `sync` (allreduce::send_dense: a collective call).
  template <class Allreduce>
  void apply(Allreduce& sync) const
  {
    TERSE_EXPECTS(decided_, "update() the selector with a cluster before applying it");
    sync.send_dense(dense_flags());
  }

 private:
  int world_;
  Codec codec_;
  step_options codec_options_;
  selection_options options_;
  std::vector<std::size_t> counts_;  // per segment; 0 where the layout keeps it dense
  std::vector<std::uint8_t> dense_;
  std::vector<std::pair<double, double>> seconds_;
  bool decided_ = false;
};

}  // namespace terse::cost

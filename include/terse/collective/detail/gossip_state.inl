#pragma once
// Saved state of terse::gossip (collective/gossip.hpp).

namespace terse {

namespace detail {
inline constexpr std::uint32_t gossip_state_version = 1;
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::save(std::ostream& out) const
{
  TERSE_EXPECTS(!pending_, "save: a round is in flight; wait for it first");
  state_writer w(out);
  w.section("terse::gossip");
  w.value(detail::gossip_state_version);
  w.value(static_cast<std::int32_t>(transport_->size()));
  w.value(static_cast<std::int32_t>(transport_->rank()));
  w.value(static_cast<std::uint64_t>(count_));
  w.value(detail::mixer_tag<M>());
  w.value(static_cast<std::uint8_t>(sizeof(V)));
  w.value(graph_.epoch());
  w.value(rounds_);
  w.value(parameter_calls_);
  w.value(weight_);
  w.value(guard_.last);
  w.value(guard_.streak);
  if constexpr (is_choco) {
    w.array(host_span<const V>(public_.data(), public_.size()));
    w.array(host_span<const V>(sum_.data(), sum_.size()));
    if constexpr (codec_keeps_state) {
      mixer_.codec.save(w);
    }
  }
  if constexpr (detail::saves_state<S>) {
    schedule_.save(w);
  }
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::load(std::istream& in)
{
  TERSE_EXPECTS(!pending_, "load: a round is in flight; wait for it first");
  state_reader r(in);
  // Nothing gossip or its policies save is longer than the vector, beyond
  // fixed-size state: a longer array is corrupt, refused before allocating.
  r.limit_arrays(count_ + 1 + detail::fixed_state_room);
  r.section("terse::gossip");
  TERSE_CHECK(r.value<std::uint32_t>() == detail::gossip_state_version, errc::io, "gossip state has another version");
  const auto world = r.value<std::int32_t>();
  TERSE_CHECK(world == transport_->size(), errc::io,
              "gossip state was saved by a world of " + std::to_string(world) + " ranks, not " +
                  std::to_string(transport_->size()));
  const auto rank = r.value<std::int32_t>();
  TERSE_CHECK(rank == transport_->rank(), errc::io,
              "gossip state was saved by rank " + std::to_string(rank) + ", not " + std::to_string(transport_->rank()));
  TERSE_CHECK(r.value<std::uint64_t>() == count_, errc::io, "gossip state was saved for another vector size");
  TERSE_CHECK(r.value<std::uint8_t>() == detail::mixer_tag<M>(), errc::io, "gossip state was saved for another mixer");
  TERSE_CHECK(r.value<std::uint8_t>() == sizeof(V), errc::io, "gossip state was saved for another value type");
  // Everything is read into locals first: a blob that ends early or does
  // not match leaves this object as it was.
  const auto epoch = r.value<std::uint64_t>();
  const auto rounds = r.value<std::uint64_t>();
  const auto parameter_calls = r.value<std::uint64_t>();
  const auto weight = r.value<double>();
  const auto last_probe = r.value<double>();
  const auto streak = r.value<std::uint32_t>();
  TERSE_CHECK(std::isfinite(weight) && weight > 0.0, errc::io, "gossip state holds a bad push-sum weight");
  std::vector<V> public_copy, sum;
  if constexpr (is_choco) {
    public_copy.resize(count_);
    sum.resize(count_);
    r.array(host_span<V>(public_copy.data(), count_));
    r.array(host_span<V>(sum.data(), count_));
  }
  // The codec and the schedule load themselves; put them back if that fails.
  if constexpr (codec_keeps_state) {
    before_load_.take(mixer_.codec);
  }
  try {
    if constexpr (codec_keeps_state) {
      mixer_.codec.load(r);
    }
    if constexpr (detail::saves_state<S> && detail::loads_state<S>) {
      schedule_.load(r);
    }
  } catch (...) {
    if constexpr (codec_keeps_state) {
      before_load_.restore(mixer_.codec);
    }
    throw;
  }
  if (epoch != graph_.epoch()) {
    graph_ = graph_.with_epoch(epoch);
  }
  rounds_ = rounds;
  poisoned_ = false;
  parameter_calls_ = parameter_calls;
  weight_ = weight;
  guard_.last = last_probe;
  guard_.streak = streak;
  if constexpr (is_choco) {
    public_.swap(public_copy);
    sum_.swap(sum);
  }
}

}  // namespace terse

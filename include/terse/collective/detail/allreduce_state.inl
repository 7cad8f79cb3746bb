#pragma once
// Saved state of terse::allreduce (collective/allreduce.hpp).

#include <algorithm>
#include <istream>
#include <ostream>
#include <string>

namespace terse {

namespace detail {
inline constexpr std::uint32_t allreduce_state_version = 1;

template <class C>
constexpr std::uint32_t codec_tag() noexcept
{
  if constexpr (requires { C::id; }) {
    return static_cast<std::uint32_t>(C::id);
  } else {
    return 0;
  }
}
/// The policies' state before a load, taken whole so a load that fails
/// halfway can put every policy back.
template <class Allreduce>
class policies_before_load {
 public:
  explicit policies_before_load(const Allreduce& sync)
  {
    bytes_.start_writing();
    std::ostream out(&bytes_);
    state_writer w(out);
    sync.save_policies(w);
  }
  void restore(Allreduce& sync) noexcept
  {
    try {
      bytes_.start_reading();
      std::istream in(&bytes_);
      state_reader r(in);
      sync.load_policies(r);
    } catch (...) {  // what was saved a moment ago loads; nothing else to do
    }
  }

 private:
  snapshot_buffer bytes_;
};
}  // namespace detail

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::save_policies(state_writer& w) const
{
  bool codec_saved = false;
  if (device_state_) {
    codec_saved = device_state_->save_policies(w);
  } else if constexpr (detail::saves_state<F>) {
    feedback_.save(w);
  }
  if constexpr (detail::saves_state<C>) {
    if (!codec_saved) {
      compressor_.save(w);
    }
  }
  if constexpr (detail::saves_state<S>) {
    schedule_.save(w);
  }
}

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::load_policies(state_reader& r)
{
  bool codec_loaded = false;
  if (device_state_) {
    codec_loaded = device_state_->load_policies(r);
  } else if constexpr (detail::saves_state<F>) {
    feedback_.load(r);
  }
  if constexpr (detail::saves_state<C>) {
    if (!codec_loaded) {
      compressor_.load(r);
    }
  }
  if constexpr (detail::saves_state<S>) {
    schedule_.load(r);
  }
}

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::save(std::ostream& out) const
{
  TERSE_EXPECTS(!engine_.in_step(), "save: a step is in flight; call wait_all first");
  state_writer w(out);
  w.section("terse::allreduce");
  w.value(detail::allreduce_state_version);
  w.value(static_cast<std::int32_t>(transport_->size()));
  w.value(static_cast<std::int32_t>(transport_->rank()));
  w.value(shape_.hash());
  w.value(detail::codec_tag<C>());
  w.value(exchanges_);
  w.value(gradient_calls_);
  w.value(parameter_calls_);
  // Feedback state lives on the device after device use; codec state stays
  // here unless the device path keeps its own (PowerSGD's Q).
  save_policies(w);
}

template <class C, class F, class T, class S>
void allreduce<C, F, T, S>::load(std::istream& in)
{
  TERSE_EXPECTS(!engine_.in_step(), "load: a step is in flight; call wait_all first");
  state_reader r(in);
  r.section("terse::allreduce");
  TERSE_CHECK(r.value<std::uint32_t>() == detail::allreduce_state_version, errc::io,
              "allreduce state has another version");
  const auto world = r.value<std::int32_t>();
  TERSE_CHECK(world == transport_->size(), errc::io,
              "allreduce state was saved by a world of " + std::to_string(world) + " ranks, not " +
                  std::to_string(transport_->size()));
  const auto rank = r.value<std::int32_t>();
  TERSE_CHECK(
      rank == transport_->rank(), errc::io,
      "allreduce state was saved by rank " + std::to_string(rank) + ", not " + std::to_string(transport_->rank()));
  TERSE_CHECK(r.value<std::uint64_t>() == shape_.hash(), errc::io, "allreduce state was saved for another layout");
  TERSE_CHECK(r.value<std::uint32_t>() == detail::codec_tag<C>(), errc::io,
              "allreduce state was saved for another codec");
  const auto exchanges = r.value<std::uint64_t>();
  const auto gradient_calls = r.value<std::uint64_t>();
  const auto parameter_calls = r.value<std::uint64_t>();
  // No saved array is longer than the layout (residuals, reference models,
  // per-segment thresholds) plus room for fixed-size state (FDA's sketch):
  // a longer one is a corrupt blob, refused before anything is allocated.
  r.limit_arrays(std::max<std::uint64_t>(shape_.total(), shape_.segments().size()) + detail::fixed_state_room);
  // The policies load themselves in turn; if one fails halfway, every one is
  // put back as it was (a failed load changes nothing).
  detail::policies_before_load<allreduce> before(*this);
  try {
    load_policies(r);
  } catch (...) {
    before.restore(*this);
    throw;
  }
  exchanges_ = exchanges;
  gradient_calls_ = gradient_calls;
  parameter_calls_ = parameter_calls;
}

}  // namespace terse

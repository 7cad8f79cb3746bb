#pragma once
// The step of terse::hierarchical_allreduce (collective/hierarchical.hpp):
// reduce-scatter in the group, allreduce across groups, allgather in the
// group, with the owners' statuses shared before any buffer changes.

#include <terse/collective/detail/step_unit.hpp>
#include <terse/core/numeric.hpp>
#include <terse/transport/detail/reduce.hpp>

#include <algorithm>
#include <cstring>
#include <string>

namespace terse {

namespace detail {
inline constexpr int hierarchy_reduce_tag = 1;
inline constexpr int hierarchy_status_tag = 2;
inline constexpr int hierarchy_gather_tag = 3;

/// A shard's status on the wire: 0 when it succeeded, else its errc + 1.
inline std::uint64_t status_word(errc code) noexcept
{
  return static_cast<std::uint64_t>(code) + 1;
}

/// Errors after which the transports cannot be trusted to carry a status.
inline bool breaks_transport(errc code) noexcept
{
  return code == errc::timeout || code == errc::peer_failed || code == errc::mpi || code == errc::nccl ||
         code == errc::cuda || code == errc::internal;
}
}  // namespace detail

template <class C, class F, class T>
void hierarchical_allreduce<C, F, T>::average(host_span<float> values)
{
  TERSE_EXPECTS(values.size() == shape_.total(), "the buffer has " + std::to_string(values.size()) +
                                                     " elements but the layout " + std::to_string(shape_.total()));
  reduce_in_group(values);
  const std::uint64_t own = reduce_across_groups();
  share_statuses(own);
  for (int s = 0; s < plan_.shards; ++s) {
    const std::uint64_t word = statuses_[static_cast<std::size_t>(s)];
    if (word != 0) {
      if (cross_sync_ && plan_.shards > 1) {  // this shard's owners may have committed: undo it
        before_.start_reading();
        std::istream in(&before_);
        cross_sync_->load(in);
      }
      const auto code = static_cast<errc>(word - 1);
      TERSE_FAIL(code, "hierarchical allreduce: the cross-group allreduce of shard " + std::to_string(s) + " of " +
                           std::to_string(plan_.shards) + " failed (" + std::string(to_string(code)) +
                           "); no rank's buffer or state changed");
    }
  }
  gather_in_group(values);
  ++steps_;
}

// Every rank sends shard s of its buffer to group rank s; owners sum the
// group's contributions in group-rank order.
template <class C, class F, class T>
void hierarchical_allreduce<C, F, T>::reduce_in_group(host_span<const float> values)
{
  const int members = group_.size();
  const int me = group_.rank();
  const std::size_t n = values.size();
  const detail::block_range mine = plan_.shard;
  float* slots = detail::at_least(contributions_, mine.count * static_cast<std::size_t>(members));
  sends_.clear();
  recvs_.clear();
  for (int s = 0; s < plan_.shards; ++s) {
    if (s != me) {
      const detail::block_range theirs = detail::block_of(n, plan_.shards, s);
      sends_.push_back(outgoing<>{s, detail::bytes_of(values.data() + theirs.begin, theirs.count)});
    }
  }
  if (plan_.owner) {
    for (int r = 0; r < members; ++r) {
      if (r != me) {
        recvs_.push_back(
            incoming<>{r, detail::writable_bytes_of(slots + static_cast<std::size_t>(r) * mine.count, mine.count)});
      }
    }
  }
  exchange_in_group(detail::hierarchy_reduce_tag);
  if (plan_.owner) {
    float* sum = detail::at_least(shard_, mine.count);
    detail::reduce_rank_order<float>(
        reduce_op::sum, members, mine.count,
        [&](int r) { return r == me ? values.data() + mine.begin : slots + static_cast<std::size_t>(r) * mine.count; },
        1, [&](int) { return sum; });
  }
}

template <class C, class F, class T>
void hierarchical_allreduce<C, F, T>::exchange_in_group(int tag)
{
  if (group_.size() > 1) {
    group_.wait(group_.start_exchange(host_span<const outgoing<>>(sends_.data(), sends_.size()),
                                      host_span<const incoming<>>(recvs_.data(), recvs_.size()), tag));
  }
}

// Owners turn their group's sum into the mean over all ranks. Returns the
// status word of this rank's shard (0 on ranks that own none).
template <class C, class F, class T>
std::uint64_t hierarchical_allreduce<C, F, T>::reduce_across_groups()
{
  if (!plan_.owner || plan_.shard.count == 0) {
    return 0;
  }
  const host_span<float> shard(shard_.data(), plan_.shard.count);
  const auto world = static_cast<float>(plan_.world);
  if (cross_sync_) {
    if (plan_.shards > 1) {  // another shard may fail where this one succeeds: keep the state to put back
      before_.start_writing();
      std::ostream out(&before_);
      cross_sync_->save(out);
    }
    // Scaled by G/W so the average over groups is the mean over ranks.
    const float scale = static_cast<float>(plan_.groups) / world;
    for (float& v : shard) {
      v *= scale;
    }
    try {
      cross_sync_->average(shard);
    } catch (const error& e) {
      if (detail::breaks_transport(e.code())) {
        throw;
      }
      return detail::status_word(e.code());
    }
    return 0;
  }
  try {
    if (cross_.size() > 1) {
      cross_.allreduce(shard, reduce_op::sum);
    }
  } catch (const error& e) {
    if (detail::breaks_transport(e.code())) {
      throw;
    }
    return detail::status_word(e.code());
  }
  for (float& v : shard) {
    v /= world;
  }
  if (options_.check_finite && !detail::all_finite(shard.data(), shard.size())) {
    return detail::status_word(errc::non_finite);
  }
  return 0;
}

// Owners tell their group how their shard went, before anything changes.
template <class C, class F, class T>
void hierarchical_allreduce<C, F, T>::share_statuses(std::uint64_t own)
{
  const int members = group_.size();
  const int me = group_.rank();
  std::uint64_t* words = detail::at_least(statuses_, static_cast<std::size_t>(plan_.shards) + 1);
  words[plan_.shards] = own;  // the word this rank sends
  if (plan_.owner) {
    words[me] = own;
  }
  sends_.clear();
  recvs_.clear();
  if (plan_.owner) {
    for (int r = 0; r < members; ++r) {
      if (r != me) {
        sends_.push_back(outgoing<>{r, detail::bytes_of(words + plan_.shards, 1)});
      }
    }
  }
  for (int s = 0; s < plan_.shards; ++s) {
    if (s != me) {
      recvs_.push_back(incoming<>{s, detail::writable_bytes_of(words + s, 1)});
    }
  }
  exchange_in_group(detail::hierarchy_status_tag);
}

// Owners send their shard's mean to the rest of the group.
template <class C, class F, class T>
void hierarchical_allreduce<C, F, T>::gather_in_group(host_span<float> values)
{
  const int members = group_.size();
  const int me = group_.rank();
  const std::size_t n = values.size();
  sends_.clear();
  recvs_.clear();
  if (plan_.owner) {
    for (int r = 0; r < members; ++r) {
      if (r != me) {
        sends_.push_back(outgoing<>{r, detail::bytes_of(shard_.data(), plan_.shard.count)});
      }
    }
  }
  for (int s = 0; s < plan_.shards; ++s) {
    if (s != me) {
      const detail::block_range theirs = detail::block_of(n, plan_.shards, s);
      recvs_.push_back(incoming<>{s, detail::writable_bytes_of(values.data() + theirs.begin, theirs.count)});
    }
  }
  exchange_in_group(detail::hierarchy_gather_tag);
  if (plan_.owner && plan_.shard.count != 0) {
    std::memcpy(values.data() + plan_.shard.begin, shard_.data(), plan_.shard.count * sizeof(float));
  }
}

// --- saved state -----------------------------------------------------------------

namespace detail {
inline constexpr std::uint32_t hierarchical_state_version = 1;
}

template <class C, class F, class T>
void hierarchical_allreduce<C, F, T>::save(std::ostream& out) const
{
  state_writer w(out);
  w.section("terse::hierarchical_allreduce");
  w.value(detail::hierarchical_state_version);
  w.value(static_cast<std::int32_t>(plan_.world));
  w.value(static_cast<std::int32_t>(world_->rank()));
  w.value(static_cast<std::int32_t>(plan_.groups));
  w.value(static_cast<std::int32_t>(plan_.shards));
  w.value(shape_.hash());
  w.value(steps_);
  w.value(static_cast<std::uint8_t>(cross_sync_ ? 1 : 0));
  if (cross_sync_) {
    cross_sync_->save(out);
  }
}

template <class C, class F, class T>
void hierarchical_allreduce<C, F, T>::load(std::istream& in)
{
  state_reader r(in);
  r.section("terse::hierarchical_allreduce");
  TERSE_CHECK(r.value<std::uint32_t>() == detail::hierarchical_state_version, errc::io,
              "hierarchical allreduce state has another version");
  const auto world = r.value<std::int32_t>();
  const auto rank = r.value<std::int32_t>();
  const auto groups = r.value<std::int32_t>();
  const auto shards = r.value<std::int32_t>();
  TERSE_CHECK(world == plan_.world && rank == world_->rank(), errc::io,
              "hierarchical allreduce state was saved by rank " + std::to_string(rank) + " of " +
                  std::to_string(world) + ", not rank " + std::to_string(world_->rank()) + " of " +
                  std::to_string(plan_.world));
  TERSE_CHECK(groups == plan_.groups && shards == plan_.shards, errc::io,
              "hierarchical allreduce state was saved for " + std::to_string(groups) + " groups of " +
                  std::to_string(shards) + " shards, not " + std::to_string(plan_.groups) + " of " +
                  std::to_string(plan_.shards));
  TERSE_CHECK(r.value<std::uint64_t>() == shape_.hash(), errc::io,
              "hierarchical allreduce state was saved for another layout");
  const auto steps = r.value<std::uint64_t>();
  const bool has_cross = r.value<std::uint8_t>() != 0;
  TERSE_CHECK(has_cross == cross_sync_.has_value(), errc::io,
              "hierarchical allreduce state was saved by a rank with another role");
  if (cross_sync_) {
    cross_sync_->load(in);  // all-or-nothing itself
  }
  steps_ = steps;
}

}  // namespace terse

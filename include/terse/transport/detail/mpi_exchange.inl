#pragma once
/// @file
/// Member bodies of terse::mpi_transport's grouped exchange (included by
/// terse/transport/mpi.hpp; never include it directly). The messages
/// themselves are posted and progressed by detail::mpi::exchange_slot.

#include <string>

namespace terse {

inline exchange_id mpi_transport::start_exchange(host_span<const outgoing<>> sends, host_span<const incoming<>> recvs,
                                                 int tag)
{
  const clock::time_point deadline = begin_call();
  // The tag is checked even with no message, so a bad one fails the same way
  // on every rank.
  std::string problem = detail::mpi::check_peer(rank_, size_, tag, tag_ub_);
  for (std::size_t i = 0; i < sends.size() && problem.empty(); ++i) {
    problem = detail::mpi::check_peer(sends[i].peer, size_, tag, tag_ub_);
  }
  for (std::size_t i = 0; i < recvs.size() && problem.empty(); ++i) {
    problem = detail::mpi::check_peer(recvs[i].peer, size_, tag, tag_ub_);
  }
  TERSE_CHECK(problem.empty(), errc::invalid_argument, "mpi_transport::start_exchange: " + problem);
  detail::mpi::exchange_slot& slot = exchanges_->take();
  slot.id = exchanges_->next_id();  // taken now, so a failure below abandons what was posted
  slot.tag = tag;
  slot.comm = p2p_comm_;
  slot.chunk = max_chunk_;
  slot.checked = options_.checked;
  slot.deadline = deadline;
  try {
    move_data([&] { slot.start(sends, recvs, size_); });
  } catch (...) {
    spend(slot);
    throw;
  }
  return exchange_id{slot.id};
}

inline bool mpi_transport::test(exchange_id id)
{
  detail::mpi::exchange_slot& slot = exchange_of(id);
  bool done = false;
  try {
    TERSE_CHECK(healthy_ && !slot.abandoned, errc::peer_failed,
                "mpi_transport: an earlier call timed out or failed while exchange " + std::to_string(id.value) +
                    " was in flight; build a new transport");
    move_data([&] { done = slot.advance(); });
    if (!done && clock::now() >= slot.deadline) {
      timed_out("exchange tag " + std::to_string(slot.tag), slot.describe_pending());
    }
  } catch (...) {
    spend(slot);
    throw;
  }
  if (!done) {
    return false;
  }
  if (!slot.mismatch.empty()) {
    std::string text = "mpi_transport: " + slot.mismatch;
    spend(slot);
    TERSE_FAIL(errc::mismatch, std::move(text));
  }
  spend(slot);
  return true;
}

inline void mpi_transport::wait(exchange_id id)
{
  detail::mpi::poll_backoff backoff;
  while (!test(id)) {
    backoff.pause();
  }
}

inline detail::mpi::exchange_slot& mpi_transport::exchange_of(exchange_id id)
{
  detail::mpi::exchange_slot* slot = exchanges_->find(id);
  TERSE_CHECK(slot != nullptr, errc::invalid_argument,
              "mpi_transport: exchange " + std::to_string(id.value) +
                  " is not in flight on this transport (unknown, or already spent)");
  return *slot;
}

inline void mpi_transport::spend(detail::mpi::exchange_slot& slot) noexcept
{
  slot.id = 0;
}

}  // namespace terse

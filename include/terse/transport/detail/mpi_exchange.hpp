#pragma once
/// @file
/// The grouped exchanges in flight on one MPI transport: a small table of
/// recycled slots (mpi_exchange_slot.hpp), found by id.

#include <terse/core/exchange.hpp>
#include <terse/transport/detail/mpi_exchange_slot.hpp>
#include <terse/transport/detail/mpi_requests.hpp>

#include <cstdint>
#include <vector>

namespace terse::detail::mpi {

/// The exchanges in flight on one transport.
class exchange_table {
 public:
  /// A free slot (the table grows only while more exchanges are in flight
  /// at once than ever before).
  exchange_slot& take()
  {
    for (exchange_slot& slot : slots_) {
      if (slot.id == 0) {
        return slot;
      }
    }
    return slots_.emplace_back();
  }

  /// The slot of `id`, or null when it is unknown or spent.
  exchange_slot* find(exchange_id id) noexcept
  {
    for (exchange_slot& slot : slots_) {
      if (slot.id != 0 && slot.id == id.value) {
        return &slot;
      }
    }
    return nullptr;
  }

  std::uint64_t next_id() noexcept { return ++last_id_; }

  void abandon_all(abandoned_requests& graveyard) noexcept
  {
    for (exchange_slot& slot : slots_) {
      if (slot.id != 0) {
        slot.abandon_into(graveyard);
      }
    }
  }

 private:
  std::vector<exchange_slot> slots_;
  std::uint64_t last_id_ = 0;
};

}  // namespace terse::detail::mpi

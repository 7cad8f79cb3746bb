#pragma once
/// @file
/// `terse::groups`: how a hierarchical collective partitions the ranks of a
/// transport into groups (the GPUs of one node, say). Ranks of a group
/// talk over fast links; groups talk over slow ones.
///
/// @code
/// terse::groups::shared_memory()         // ranks sharing a host (the transport says)
/// terse::groups::of_size(8)              // ranks 0-7, 8-15, ...
/// terse::groups::by_colour(node_index)   // the trainer says, rank by rank
/// terse::groups::from_list({{0, 1, 2}, {3, 4, 5, 6, 7}})  // every rank passes the same list
/// @endcode
///
/// Groups may differ in size. Within a group, ranks keep the order of the
/// parent transport.

#include <terse/core/error.hpp>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace terse {

class groups {
 public:
  enum class kind : unsigned char { shared_memory, colour, list };

  /// Ranks that share a host, as the transport's split_shared() finds them
  /// (MPI_Comm_split_type; every thread of a local_world is one group).
  static groups shared_memory() { return groups(kind::shared_memory); }

  /// Consecutive runs of `ranks_per_group` ranks (the last may be shorter).
  static groups of_size(int ranks_per_group)
  {
    TERSE_EXPECTS(ranks_per_group >= 1, "a group has at least one rank (got " + std::to_string(ranks_per_group) + ")");
    groups g(kind::colour);
    g.size_ = ranks_per_group;
    return g;
  }

  /// This rank's group: ranks passing the same colour (>= 0) form a group.
  static groups by_colour(int colour)
  {
    TERSE_EXPECTS(colour >= 0, "group colours are non-negative (got " + std::to_string(colour) + ")");
    groups g(kind::colour);
    g.colour_ = colour;
    return g;
  }

  /// The members of every group; each rank of the transport in exactly one.
  /// Every rank passes the same list.
  static groups from_list(std::vector<std::vector<int>> members)
  {
    groups g(kind::list);
    g.members_ = std::move(members);
    return g;
  }

  kind how() const noexcept { return how_; }

  /// This rank's colour in a world of `world` ranks (not for shared_memory).
  /// @throws terse::error(errc::invalid_argument) when the list is not a
  ///         partition of the ranks
  int colour_of(int rank, int world) const
  {
    if (how_ == kind::list) {
      return colour_in_list(rank, world);
    }
    return size_ > 0 ? rank / size_ : colour_;
  }

 private:
  explicit groups(kind how) : how_(how) {}

  int colour_in_list(int rank, int world) const
  {
    std::vector<int> seen(static_cast<std::size_t>(world), 0);
    int colour = -1;
    for (std::size_t g = 0; g < members_.size(); ++g) {
      TERSE_EXPECTS(!members_[g].empty(), "group " + std::to_string(g) + " of the list is empty");
      for (const int member : members_[g]) {
        TERSE_EXPECTS(member >= 0 && member < world, "group " + std::to_string(g) + " names rank " +
                                                         std::to_string(member) + ", not a rank of a world of " +
                                                         std::to_string(world));
        TERSE_EXPECTS(seen[static_cast<std::size_t>(member)]++ == 0,
                      "rank " + std::to_string(member) + " is in more than one group of the list");
        if (member == rank) {
          colour = static_cast<int>(g);
        }
      }
    }
    for (int r = 0; r < world; ++r) {
      TERSE_EXPECTS(seen[static_cast<std::size_t>(r)] != 0,
                    "rank " + std::to_string(r) + " is in no group of the list");
    }
    return colour;
  }

  kind how_;
  int size_ = 0;
  int colour_ = 0;
  std::vector<std::vector<int>> members_;
};

}  // namespace terse

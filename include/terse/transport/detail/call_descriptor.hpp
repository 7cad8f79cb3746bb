#pragma once
/// @file
/// What one rank says about a collective call, so ranks can check that they
/// all make the same call before any data moves.

#include <terse/core/verbs.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace terse::detail {

struct call_descriptor {
  verb what = verb::barrier;
  data_type type = data_type::u8;
  reduce_op op = reduce_op::sum;
  int root = -1;
  std::uint64_t count = 0;        ///< elements (for allgatherv: this rank's count)
  std::uint64_t counts_hash = 0;  ///< allgatherv: a hash of all counts
  bool arguments_valid = true;    ///< false when this rank's own arguments failed a check

  /// Equal when two ranks make the same call. allgatherv ranks send different
  /// counts by design, so only the agreed counts vector is compared.
  bool same_call(const call_descriptor& other) const noexcept
  {
    const bool counts_agree = what == verb::allgatherv ? counts_hash == other.counts_hash : count == other.count;
    return what == other.what && type == other.type && op == other.op && root == other.root && counts_agree;
  }

  /// One 64-bit value that differs when any field of same_call() differs
  /// (with overwhelming probability): what networked transports exchange.
  std::uint64_t fingerprint() const noexcept
  {
    std::uint64_t h = 0xcbf29ce484222325ull;
    const auto mix = [&h](std::uint64_t v) {
      h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
      h *= 0x100000001b3ull;
    };
    mix(static_cast<std::uint64_t>(what));
    mix(static_cast<std::uint64_t>(type));
    mix(static_cast<std::uint64_t>(op));
    mix(static_cast<std::uint64_t>(static_cast<std::int64_t>(root)));
    mix(what == verb::allgatherv ? counts_hash : count);
    return h;
  }
};

inline std::uint64_t hash_counts(std::span<const std::size_t> counts) noexcept
{
  std::uint64_t h = 0x84222325cbf29ce4ull;
  for (std::size_t c : counts) {
    h ^= c + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  }
  return h ^ counts.size();
}

inline std::string describe(const call_descriptor& d)
{
  std::string text(to_string(d.what));
  text += "(count=" + std::to_string(d.count);
  text += ", op=" + std::string(to_string(d.op));
  if (d.root >= 0) {
    text += ", root=" + std::to_string(d.root);
  }
  text += ", element bytes=" + std::to_string(size_of(d.type)) + ")";
  return text;
}

}  // namespace terse::detail

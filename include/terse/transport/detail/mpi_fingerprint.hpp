#pragma once
/// @file
/// Checked mode's agreement step: every rank contributes a fingerprint of
/// its call, one MPI_Iallreduce(MAX) over {words, -words} gives each word's
/// maximum and minimum, and the ranks agree exactly when every word's
/// maximum equals its minimum.

#include <terse/core/verbs.hpp>
#include <terse/transport/detail/mpi_datatype.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace terse::detail::mpi {

/// What ranks must agree on before a collective moves data. Fields that do
/// not apply to a verb are -1 on every rank.
struct call_fingerprint {
  verb what = verb::barrier;
  std::int64_t type = -1;  ///< data_type, or -1
  std::int64_t op = -1;    ///< reduce_op, or -1
  std::int64_t root = -1;
  std::int64_t count = -1;        ///< the verb's defining element count
  std::int64_t counts_hash = -1;  ///< allgatherv: hash of the counts array
  std::int64_t chunk = -1;        ///< elements per MPI call (message boundaries must match)
  bool valid = true;              ///< this rank's own arguments passed their checks

  static constexpr int words = 8;

  /// Writes {w, -w} for max/min in one MAX reduction. The last word is the
  /// rank itself when invalid and `world` otherwise, so its minimum names
  /// the lowest rank with bad arguments.
  void encode(std::int64_t* out, int rank, int world) const noexcept
  {
    const std::int64_t w[words] = {
        static_cast<std::int64_t>(what), type, op, root, count, counts_hash, chunk, valid ? world : rank};
    for (int i = 0; i < words; ++i) {
      out[i] = w[i];
      out[words + i] = -w[i];
    }
  }
};

/// FNV-1a over allgatherv's counts: ranks that pass different counts get
/// different hashes (with overwhelming probability).
inline std::int64_t hash_counts(const std::size_t* counts, std::size_t n) noexcept
{
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t v = counts[i];
    for (int b = 0; b < 8; ++b) {
      h ^= v & 0xffu;
      h *= 0x100000001b3ull;
      v >>= 8;
    }
  }
  return static_cast<std::int64_t>(h >> 1);  // keep it non-negative so -h cannot overflow
}

/// The outcome of the agreement step.
struct agreement {
  int first_invalid_rank = -1;  ///< -1 when every rank's arguments were valid
  std::string disagreement;     ///< empty when all ranks made the same call
};

namespace fingerprint_detail {
inline std::string verb_name(std::int64_t v)
{
  return v >= 0 && v < static_cast<std::int64_t>(verb_count) ? std::string(to_string(static_cast<verb>(v)))
                                                             : std::to_string(v);
}
inline std::string type_name(std::int64_t v)
{
  return is_data_type(static_cast<std::uint64_t>(v)) ? std::string(name_of(static_cast<data_type>(v)))
                                                     : std::string("none");
}
inline std::string op_name(std::int64_t v)
{
  return v >= 0 && v <= 3 ? std::string(to_string(static_cast<reduce_op>(v))) : std::string("none");
}
}  // namespace fingerprint_detail

/// Reads the reduced {max, -min} words back. Only builds strings when the
/// ranks disagree.
inline agreement decode_agreement(const std::int64_t* reduced, int world)
{
  namespace fd = fingerprint_detail;
  constexpr int n = call_fingerprint::words;
  agreement result;
  const std::int64_t lowest_valid_marker = -reduced[n + n - 1];
  if (lowest_valid_marker < world) {
    result.first_invalid_rank = static_cast<int>(lowest_valid_marker);
  }
  const auto differs = [&](int i) { return reduced[i] != -reduced[n + i]; };
  const auto pair = [&](int i, auto name) { return " (" + name(-reduced[n + i]) + " and " + name(reduced[i]) + ")"; };
  const auto number = [](std::int64_t v) { return std::to_string(v); };
  if (differs(0)) {
    result.disagreement = "ranks called different verbs" + pair(0, fd::verb_name);
  } else if (differs(1)) {
    result.disagreement = "ranks passed different element types" + pair(1, fd::type_name);
  } else if (differs(2)) {
    result.disagreement = "ranks passed different reduction operators" + pair(2, fd::op_name);
  } else if (differs(3)) {
    result.disagreement = "ranks passed different roots" + pair(3, number);
  } else if (differs(4)) {
    result.disagreement = "ranks passed different element counts" + pair(4, number);
  } else if (differs(5)) {
    result.disagreement = "ranks passed different counts arrays to allgatherv";
  } else if (differs(6)) {
    result.disagreement = "ranks use different max_chunk_elements" + pair(6, number);
  }
  return result;
}

}  // namespace terse::detail::mpi

#pragma once
/// @file
/// PowerSGD's host state: per bucket id, the shape and the warm-start Q
/// (stored transposed, k×p row-major: column by column) plus the scratch one step needs, allocated when the
/// bucket is first seen and reused after. Also the saved-state layout,
/// shared with the CUDA state so a blob written by either loads into
/// either:
///
///     section "powersgd"
///       u32 rank, u64 bucket count (bit 63 set: per-tensor groups follow
///       the buckets, as in powersgd_tensors.hpp)
///       per bucket, in increasing id order:
///         section "powersgd.bucket"
///         u32 id, u64 n, u64 m, u64 p, u64 k, f32[k·p] Qᵀ (Q column by column)

#include <terse/compress/detail/powersgd_bucket.hpp>
#include <terse/compress/detail/powersgd_host.hpp>
#include <terse/compress/detail/powersgd_math.hpp>
#include <terse/compress/detail/powersgd_tensors.hpp>
#include <terse/core/error.hpp>
#include <terse/core/philox.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace terse::detail {

/// Identifies a bucket's saved shape; load compares it with what n and the
/// codec's rank imply.
inline void write_powersgd_bucket(state_writer& out, bucket_id id, const powersgd_shape& s)
{
  out.section("powersgd.bucket");
  out.value(std::uint32_t{id});
  out.value(std::uint64_t{s.n});
  out.value(std::uint64_t{s.m});
  out.value(std::uint64_t{s.p});
  out.value(std::uint64_t{s.k});
}

/// Reads what write_powersgd_bucket wrote and checks it against `rank`:
/// errc::io unless the saved m, p and k are the ones n and rank imply.
inline powersgd_shape read_powersgd_bucket(state_reader& in, std::uint32_t rank, bucket_id& id)
{
  in.section("powersgd.bucket");
  id = in.value<std::uint32_t>();
  const auto n = in.value<std::uint64_t>();
  const auto m = in.value<std::uint64_t>();
  const auto p = in.value<std::uint64_t>();
  const auto k = in.value<std::uint64_t>();
  const powersgd_shape s = powersgd_shape_of(n, rank);
  TERSE_CHECK(n != 0 && s.m == m && s.p == p && s.k == k, errc::io,
              "terse state: powersgd bucket " + std::to_string(id) + " was saved as " + std::to_string(m) + "x" +
                  std::to_string(p) + " rank " + std::to_string(k) + " for " + std::to_string(n) +
                  " values; this codec (rank " + std::to_string(rank) + ") needs " + std::to_string(s.m) + "x" +
                  std::to_string(s.p) + " rank " + std::to_string(s.k));
  return s;
}

inline void write_powersgd_header(state_writer& out, std::uint32_t rank, std::uint64_t buckets)
{
  out.section("powersgd");
  out.value(rank);
  out.value(buckets);
}

/// Reads the header and returns the bucket count; errc::io when the blob was
/// saved with another rank.
inline std::uint64_t read_powersgd_header(state_reader& in, std::uint32_t rank)
{
  in.section("powersgd");
  const auto saved_rank = in.value<std::uint32_t>();
  TERSE_CHECK(saved_rank == rank, errc::io,
              "terse state: powersgd state was saved with rank " + std::to_string(saved_rank) +
                  "; this codec has rank " + std::to_string(rank));
  return in.value<std::uint64_t>();
}

/// The host codec's state: buckets by id, and scratch that is not per
/// bucket (decode's factors, encode's scaled copy of huge inputs).
struct powersgd_host_state {
  std::map<bucket_id, powersgd_bucket> buckets;     ///< flat segments (no declared shapes)
  std::map<bucket_id, powersgd_group> groups;       ///< segments planned per tensor
  std::map<bucket_id, powersgd_plan> decode_plans;  ///< segments this codec only decodes (not saved)
  std::vector<float> factors;                       ///< decode_add: P and Q copied off the wire
  std::vector<float> scaled;                        ///< encode: inputs beyond powersgd_unscaled_limit, scaled by 2^-e

  /// The bucket `id`, created (Q drawn from `shared`) on first use. A bucket
  /// keeps its shape: another n or rank for the same id is a caller error.
  powersgd_bucket& bucket(bucket_id id, const powersgd_shape& s, const random_stream& shared)
  {
    auto found = buckets.find(id);
    if (found != buckets.end()) {
      const powersgd_shape& had = found->second.shape;
      TERSE_EXPECTS(had.n == s.n && had.k == s.k, "powersgd bucket " + std::to_string(id) + " holds " +
                                                      std::to_string(had.n) + " values at rank " +
                                                      std::to_string(had.k) + "; this call has " + std::to_string(s.n) +
                                                      " at rank " + std::to_string(s.k));
      return found->second;
    }
    powersgd_bucket fresh;
    fresh.allocate(s);
    for (std::size_t i = 0; i < fresh.q.size(); ++i) {
      fresh.q[i] = powersgd_seed_value(shared, i);
    }
    return buckets.emplace(id, std::move(fresh)).first->second;
  }

  void save(state_writer& out, std::uint32_t rank) const
  {
    write_powersgd_header(out, rank, buckets.size() | (groups.empty() ? 0 : powersgd_groups_follow));
    for (const auto& [id, b] : buckets) {
      write_powersgd_bucket(out, id, b.shape);
      out.array(host_span<const float>(b.q));
    }
    if (!groups.empty()) {
      write_powersgd_groups(out, groups, [](const powersgd_group& g, const powersgd_piece& piece) {
        return host_span<const float>(g.matrices[piece.matrix].q);
      });
    }
  }

  /// Replaces the state with the saved one, or throws errc::io and keeps it.
  void load(state_reader& in, std::uint32_t rank)
  {
    const std::uint64_t header = read_powersgd_header(in, rank);
    const std::uint64_t count = header & ~powersgd_groups_follow;
    std::map<bucket_id, powersgd_bucket> loaded;
    for (std::uint64_t b = 0; b < count; ++b) {
      bucket_id id = 0;
      const powersgd_shape s = read_powersgd_bucket(in, rank, id);
      TERSE_CHECK(loaded.empty() || id > loaded.rbegin()->first, errc::io,
                  "terse state: powersgd buckets are not in increasing id order");
      powersgd_bucket fresh;
      fresh.allocate(s);
      in.array(host_span<float>(fresh.q));
      TERSE_CHECK(max_magnitude_bits(fresh.q.data(), fresh.q.size()) < first_non_finite_bits, errc::io,
                  "terse state: powersgd bucket " + std::to_string(id) + " holds a non-finite Q");
      loaded.emplace(id, std::move(fresh));
    }
    std::map<bucket_id, powersgd_group> loaded_groups;
    if ((header & powersgd_groups_follow) != 0) {
      read_powersgd_groups(
          in, rank,
          [&](bucket_id id, powersgd_plan plan) -> powersgd_group& {
            powersgd_group& g = loaded_groups[id];
            g.allocate(std::move(plan));
            return g;
          },
          [&](powersgd_group& g, const powersgd_piece& piece) {
            std::vector<float>& q = g.matrices[piece.matrix].q;
            in.array(host_span<float>(q));
            TERSE_CHECK(max_magnitude_bits(q.data(), q.size()) < first_non_finite_bits, errc::io,
                        "terse state: a powersgd tensor holds a non-finite Q");
          });
    }
    buckets = std::move(loaded);
    groups = std::move(loaded_groups);
  }
};

/// Forgets a bucket that the current call created unless the call
/// succeeds (keep()), so a failed first step leaves no state behind.
class powersgd_new_bucket_guard {
 public:
  powersgd_new_bucket_guard(powersgd_host_state& state, bucket_id id)
      : state_(&state), id_(id), fresh_(!state.buckets.contains(id))
  {
  }
  powersgd_new_bucket_guard(const powersgd_new_bucket_guard&) = delete;
  powersgd_new_bucket_guard& operator=(const powersgd_new_bucket_guard&) = delete;
  ~powersgd_new_bucket_guard()
  {
    if (fresh_) {
      state_->buckets.erase(id_);
    }
  }
  void keep() noexcept { fresh_ = false; }

 private:
  powersgd_host_state* state_;
  bucket_id id_;
  bool fresh_;
};

}  // namespace terse::detail

#pragma once
/// @file
/// DGC's state: the last threshold (as a magnitude key) used for each
/// bucket, so the next step can filter with it straight away. One codec
/// instance codes every bucket of a collective, and buckets differ in
/// scale, hence one threshold per bucket id.

#include <terse/core/error.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

namespace terse::detail {

class dgc_thresholds {
 public:
  struct entry {
    std::uint32_t bucket;
    std::uint32_t key;
  };

  /// The threshold last used for `bucket`, if any.
  std::optional<std::uint32_t> find(std::uint32_t bucket) const noexcept
  {
    const auto at = lower(bucket);
    if (at != entries_.end() && at->bucket == bucket) {
      return at->key;
    }
    return std::nullopt;
  }

  /// Sets the threshold of `bucket` (allocates only for a new bucket).
  void set(std::uint32_t bucket, std::uint32_t key)
  {
    const auto at = lower(bucket);
    if (at != entries_.end() && at->bucket == bucket) {
      entries_[static_cast<std::size_t>(at - entries_.begin())].key = key;
    } else {
      entries_.insert(entries_.begin() + (at - entries_.begin()), entry{bucket, key});
    }
  }

  void clear() noexcept { entries_.clear(); }
  std::size_t size() const noexcept { return entries_.size(); }

  void save(state_writer& out) const
  {
    out.section("terse.compress.dgc.thresholds");
    out.value<std::uint64_t>(entries_.size());
    out.array(host_span<const entry>(entries_));
  }

  void load(state_reader& in)
  {
    in.section("terse.compress.dgc.thresholds");
    const auto count = in.value<std::uint64_t>();
    TERSE_CHECK(count <= (std::uint64_t{1} << 24), errc::io, "terse state: implausible DGC bucket count");
    std::vector<entry> loaded(static_cast<std::size_t>(count));
    in.array(host_span<entry>(loaded));
    for (std::size_t i = 1; i < loaded.size(); ++i) {
      TERSE_CHECK(loaded[i - 1].bucket < loaded[i].bucket, errc::io, "terse state: DGC buckets out of order");
    }
    entries_ = std::move(loaded);
  }

 private:
  std::vector<entry>::const_iterator lower(std::uint32_t bucket) const noexcept
  {
    return std::lower_bound(entries_.begin(), entries_.end(), bucket,
                            [](const entry& e, std::uint32_t b) { return e.bucket < b; });
  }

  std::vector<entry> entries_;
};

}  // namespace terse::detail

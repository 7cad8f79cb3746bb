#pragma once
/// @file
/// `terse::layout`: many tensors packed into one flat buffer, grouped into
/// buckets. Collectives communicate bucket by bucket (so communication can
/// start before the whole gradient is ready and small tensors can be
/// treated differently), and key per-bucket state by a stable bucket id.

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <span>
#include <vector>

namespace terse {

/// Where one tensor lives in the flat buffer.
struct tensor_range {
  std::size_t offset = 0;
  std::size_t count = 0;
};

/// A contiguous run of tensors in one bucket that is treated one way:
/// compressed (with its own feedback state, keyed by `id`) or sent dense
/// (tensors smaller than the layout's `dense_below`).
struct segment {
  bucket_id id = 0;        ///< stable over the layout's life: keys feedback state
  std::size_t offset = 0;  ///< first element in the flat buffer
  std::size_t count = 0;
  bool compressed = true;
};

/// A run of whole tensors communicated together.
struct bucket {
  bucket_id id = 0;
  std::size_t offset = 0;  ///< first element in the flat buffer
  std::size_t count = 0;   ///< elements
  std::size_t first_tensor = 0;
  std::size_t tensor_count = 0;
  std::size_t first_segment = 0;
  std::size_t segment_count = 0;
};

/// Tensors laid end to end, grouped greedily in order into buckets of at
/// most `bucket_elements` (a tensor larger than that is a bucket of its
/// own; tensors are never split, as in PyTorch DDP). Tensors with fewer than
/// `dense_below` elements (biases, norms) are never compressed: compressing
/// them saves almost nothing and costs accuracy.
class layout {
 public:
  layout() = default;

  /// @param tensor_sizes element count of each tensor, in buffer order
  /// @param bucket_elements target bucket size in elements (> 0)
  /// @param dense_below tensors smaller than this stay uncompressed
  layout(std::span<const std::size_t> tensor_sizes, std::size_t bucket_elements, std::size_t dense_below = 0)
      : dense_below_(dense_below)
  {
    TERSE_EXPECTS(bucket_elements > 0, "buckets hold at least one element");
    tensors_.reserve(tensor_sizes.size());
    std::size_t offset = 0;
    for (std::size_t i = 0; i < tensor_sizes.size(); ++i) {
      const std::size_t count = tensor_sizes[i];
      tensors_.push_back(tensor_range{offset, count});
      const bool starts_new = buckets_.empty() || buckets_.back().count + count > bucket_elements;
      if (starts_new) {
        buckets_.push_back(bucket{static_cast<bucket_id>(buckets_.size()), offset, 0, i, 0});
      }
      buckets_.back().count += count;
      buckets_.back().tensor_count += 1;
      offset += count;
    }
    total_ = offset;
    for (bucket& b : buckets_) {
      b.first_segment = segments_.size();
      for (std::size_t t = b.first_tensor; t < b.first_tensor + b.tensor_count; ++t) {
        const bool compressed = tensors_[t].count >= dense_below;
        if (segments_.size() > b.first_segment && segments_.back().compressed == compressed) {
          segments_.back().count += tensors_[t].count;  // extend the run
        } else {
          segments_.push_back(
              segment{static_cast<bucket_id>(segments_.size()), tensors_[t].offset, tensors_[t].count, compressed});
        }
      }
      b.segment_count = segments_.size() - b.first_segment;
    }
  }

  /// One tensor as one bucket: the flat buffer is all there is.
  static layout single(std::size_t count)
  {
    const std::size_t sizes[] = {count};
    return layout(sizes, count == 0 ? 1 : count);
  }

  std::size_t total() const noexcept { return total_; }
  std::span<const tensor_range> tensors() const noexcept { return tensors_; }
  std::span<const bucket> buckets() const noexcept { return buckets_; }
  /// Every segment, in buffer order; bucket b's are
  /// segments().subspan(b.first_segment, b.segment_count).
  std::span<const segment> segments() const noexcept { return segments_; }
  std::span<const segment> segments_of(const bucket& b) const noexcept
  {
    return std::span<const segment>(segments_).subspan(b.first_segment, b.segment_count);
  }
  std::size_t dense_below() const noexcept { return dense_below_; }

  /// A fingerprint of the shape (tensor sizes and bucket boundaries), stored
  /// with checkpointed state so it is never restored into another layout.
  std::uint64_t hash() const noexcept
  {
    std::uint64_t h = 0xcbf29ce484222325ull;
    const auto mix = [&h](std::uint64_t v) {
      for (int byte = 0; byte < 8; ++byte) {
        h ^= (v >> (8 * byte)) & 0xffu;
        h *= 0x100000001b3ull;
      }
    };
    mix(tensors_.size());
    for (const auto& t : tensors_) {
      mix(t.count);
    }
    mix(buckets_.size());
    for (const auto& b : buckets_) {
      mix(b.count);
    }
    mix(dense_below_);
    return h;
  }

  friend std::ostream& operator<<(std::ostream& os, const layout& l)
  {
    return os << "layout{" << l.tensors_.size() << " tensors, " << l.total_ << " elements, " << l.buckets_.size()
              << " buckets}";
  }

 private:
  std::vector<tensor_range> tensors_;
  std::vector<bucket> buckets_;
  std::vector<segment> segments_;
  std::size_t total_ = 0;
  std::size_t dense_below_ = 0;
};

}  // namespace terse

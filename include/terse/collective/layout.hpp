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

/// A run of whole tensors communicated together.
struct bucket {
  bucket_id id = 0;
  std::size_t offset = 0;  ///< first element in the flat buffer
  std::size_t count = 0;   ///< elements
  std::size_t first_tensor = 0;
  std::size_t tensor_count = 0;
};

/// Tensors laid end to end, grouped greedily in order into buckets of at
/// most `bucket_elements` (a tensor larger than that is a bucket of its
/// own; tensors are never split, as in PyTorch DDP).
class layout {
 public:
  layout() = default;

  /// @param tensor_sizes element count of each tensor, in buffer order
  /// @param bucket_elements target bucket size in elements (> 0)
  layout(std::span<const std::size_t> tensor_sizes, std::size_t bucket_elements)
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
  std::size_t total_ = 0;
};

}  // namespace terse

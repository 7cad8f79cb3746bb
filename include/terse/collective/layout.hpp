#pragma once
/// @file
/// `terse::layout`: many tensors packed into one flat buffer, grouped into
/// buckets. Collectives communicate bucket by bucket (so communication can
/// start before the whole gradient is ready and small tensors can be
/// treated differently), and key per-bucket state by a stable bucket id.

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/tensor_shape.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <ostream>
#include <span>
#include <string>
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
  std::size_t first_tensor = 0;  ///< index into layout::tensors()
  std::size_t tensor_count = 0;
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
///
/// Tensor shapes are optional: set_shapes (or the constructor that takes
/// shapes) declares each tensor a matrix (rows × cols, row-major) or a
/// vector, and codecs that work on matrices (PowerSGD) then compress each
/// matrix with its own shape and send vectors dense. Without shapes they
/// fall back to viewing each compressed segment as one near-square matrix.
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
          segments_.back().tensor_count += 1;
        } else {
          segments_.push_back(segment{static_cast<bucket_id>(segments_.size()), tensors_[t].offset, tensors_[t].count,
                                      compressed, t, 1});
        }
      }
      b.segment_count = segments_.size() - b.first_segment;
    }
  }

  /// As above, with each tensor's shape declared (its size is the shape's).
  layout(std::span<const tensor_shape> shapes, std::size_t bucket_elements, std::size_t dense_below = 0)
      : layout(sizes_of(shapes), bucket_elements, dense_below)
  {
    set_shapes(shapes);
  }

  /// Declares every tensor's shape, in buffer order. Throws
  /// errc::invalid_argument (and keeps the layout as it was) unless there is
  /// one shape per tensor, each matrix has rows ≥ 1 and cols ≥ 1, and each
  /// shape holds exactly its tensor's element count.
  void set_shapes(std::span<const tensor_shape> shapes)
  {
    TERSE_EXPECTS(shapes.size() == tensors_.size(), "layout::set_shapes: " + std::to_string(shapes.size()) +
                                                        " shapes for " + std::to_string(tensors_.size()) + " tensors");
    for (std::size_t t = 0; t < shapes.size(); ++t) {
      const tensor_shape& s = shapes[t];
      const bool dims_ok = s.is_matrix() ? s.rows != 0 && s.cols != 0 : s.dims == 1 && s.cols == 1;
      const bool fits = dims_ok && s.rows <= std::numeric_limits<std::uint64_t>::max() / s.cols;
      TERSE_EXPECTS(fits && s.count() == tensors_[t].count,
                    "layout::set_shapes: tensor " + std::to_string(t) + " holds " + std::to_string(tensors_[t].count) +
                        " elements; its shape is " + std::to_string(s.rows) + "x" + std::to_string(s.cols) +
                        (s.is_matrix() ? " (matrix)"
                         : s.dims == 1 ? " (vector)"
                                       : " (neither matrix nor vector)"));
    }
    shapes_.assign(shapes.begin(), shapes.end());
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

  /// Every tensor's declared shape, in buffer order; empty when none were declared.
  std::span<const tensor_shape> shapes() const noexcept { return shapes_; }
  bool has_shapes() const noexcept { return !shapes_.empty(); }
  /// The shapes of the tensors of `s`; empty when none were declared.
  std::span<const tensor_shape> shapes_of(const segment& s) const noexcept
  {
    return shapes_.empty() ? std::span<const tensor_shape>{}
                           : std::span<const tensor_shape>(shapes_).subspan(s.first_tensor, s.tensor_count);
  }

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
    if (!shapes_.empty()) {  // layouts without shapes keep their fingerprint
      for (const auto& s : shapes_) {
        mix(s.rows);
        mix(s.cols);
        mix(s.dims);
      }
    }
    return h;
  }

  friend std::ostream& operator<<(std::ostream& os, const layout& l)
  {
    return os << "layout{" << l.tensors_.size() << " tensors, " << l.total_ << " elements, " << l.buckets_.size()
              << " buckets}";
  }

 private:
  static std::vector<std::size_t> sizes_of(std::span<const tensor_shape> shapes)
  {
    std::vector<std::size_t> sizes;
    sizes.reserve(shapes.size());
    for (const auto& s : shapes) {
      sizes.push_back(static_cast<std::size_t>(s.count()));
    }
    return sizes;
  }

  std::vector<tensor_range> tensors_;
  std::vector<tensor_shape> shapes_;
  std::vector<bucket> buckets_;
  std::vector<segment> segments_;
  std::size_t total_ = 0;
  std::size_t dense_below_ = 0;
};

}  // namespace terse

#pragma once
/// @file
/// Float buffers keyed by a dense segment id, sized on first use and reused
/// every step after (the first step allocates, later ones never do), and
/// saved or restored as one state section.

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace terse::detail {

class keyed_buffers {
 public:
  /// The buffer of `id`, zero-filled on first use; its size is fixed then.
  host_span<float> get(bucket_id id, std::size_t count)
  {
    if (id >= buffers_.size()) {
      buffers_.resize(id + 1);
    }
    auto& buffer = buffers_[id];
    if (buffer.size() != count) {
      TERSE_EXPECTS(buffer.empty(), "feedback state for segment " + std::to_string(id) + " holds " +
                                        std::to_string(buffer.size()) + " values, not " + std::to_string(count));
      buffer.assign(count, 0.0f);
    }
    return host_span<float>(buffer);
  }

  /// The buffer of `id`, which get() has sized already.
  host_span<float> existing(bucket_id id)
  {
    TERSE_EXPECTS(id < buffers_.size() && !buffers_[id].empty(),
                  "feedback state for segment " + std::to_string(id) + " does not exist yet");
    return host_span<float>(buffers_[id]);
  }

  /// Exchanges the contents of id's buffer with `other`'s (commit of a
  /// staged update in O(1)).
  void swap(bucket_id id, keyed_buffers& other) { buffers_[id].swap(other.buffers_[id]); }

  void zero()
  {
    for (auto& b : buffers_) {
      std::fill(b.begin(), b.end(), 0.0f);
    }
  }

  /// Sum of squares of every value (for tests and diagnostics).
  double squared_norm() const
  {
    double sum = 0;
    for (const auto& b : buffers_) {
      for (float v : b) {
        sum += static_cast<double>(v) * v;
      }
    }
    return sum;
  }

  void save(state_writer& out) const
  {
    out.value(static_cast<std::uint64_t>(buffers_.size()));
    for (const auto& b : buffers_) {
      out.array(host_span<const float>(b));
    }
  }

  void load(state_reader& in)
  {
    const auto count = in.value<std::uint64_t>();
    buffers_.resize(count);
    for (auto& b : buffers_) {
      b.assign(in.peek_array_length(), 0.0f);
      in.array(host_span<float>(b));
    }
  }

 private:
  std::vector<std::vector<float>> buffers_;
};

}  // namespace terse::detail

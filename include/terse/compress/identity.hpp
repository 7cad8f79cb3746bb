#pragma once
/// @file
/// `compress::identity`: no compression. The collective recognises it and
/// averages the buffer in place with one plain allreduce per bucket.

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstring>

namespace terse::compress {

struct identity {
  static constexpr aggregation aggregation_kind = aggregation::summable;
  using wire_type = float;

  std::size_t max_encoded_bytes(std::size_t n) const noexcept { return n * sizeof(float); }

  std::size_t encode(const codec_context&, host_span<const float> in, host_span<std::byte> out) const
  {
    TERSE_EXPECTS(out.size() >= in.size_bytes(), "identity needs 4 bytes per value");
    if (!in.empty()) {
      std::memcpy(out.data(), in.data(), in.size_bytes());
    }
    return in.size_bytes();
  }

  void decode_add(const codec_context&, host_span<const std::byte> payload, host_span<float> accumulator) const
  {
    TERSE_CHECK(payload.size() == accumulator.size_bytes(), errc::malformed_payload,
                "identity payload of " + std::to_string(payload.size()) + " bytes for " +
                    std::to_string(accumulator.size()) + " values");
    for (std::size_t i = 0; i < accumulator.size(); ++i) {
      float value;
      std::memcpy(&value, payload.data() + i * sizeof(float), sizeof(float));
      accumulator[i] += value;
    }
  }

  /// out = the payload's values, bit for bit (−0 stays −0).
  void decode(const codec_context&, host_span<const std::byte> payload, host_span<float> out) const
  {
    TERSE_CHECK(payload.size() == out.size_bytes(), errc::malformed_payload,
                "identity payload of " + std::to_string(payload.size()) + " bytes for " + std::to_string(out.size()) +
                    " values");
    if (!out.empty()) {
      std::memcpy(out.data(), payload.data(), out.size_bytes());
    }
  }
};

}  // namespace terse::compress

#pragma once
// The one harness every decoder's fuzz target uses. The first input byte
// picks a mode:
//   raw (< 128):        the rest is a payload handed straight to decode_add
//   structured (>= 128): floats taken from the input are encoded into a
//                        valid payload, then mutated (byte flips, truncation,
//                        extension) as the input says, then decoded.
// Either way decode_add must return normally or throw terse::error; the
// sanitizers catch everything else (out-of-bounds reads, overflow, UB).
// Accepted payloads must decode to finite values.

#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace terse::fuzz {

class input_reader {
 public:
  input_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::size_t left() const { return size_ - at_; }
  template <class T>
  T take()
  {
    T value{};
    const std::size_t n = left() < sizeof(T) ? left() : sizeof(T);
    std::memcpy(&value, data_ + at_, n);
    at_ += n;
    return value;
  }
  const std::uint8_t* rest() const { return data_ + at_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

/// Runs one fuzz input against `codec`. `max_values` bounds the element
/// count so a single input stays fast.
template <class Codec>
int fuzz_decode(Codec codec, const std::uint8_t* data, std::size_t size, std::size_t max_values = 1 << 14)
{
  input_reader in(data, size);
  const auto mode = in.take<std::uint8_t>();
  const std::size_t n = in.take<std::uint16_t>() % (max_values + 1);
  codec_context ctx;
  ctx.seed = in.take<std::uint8_t>();
  ctx.step = in.take<std::uint8_t>();
  ctx.world = 4;
  std::vector<std::byte> payload;
  if (mode < 128) {
    payload.resize(in.left());
    if (!payload.empty()) {
      std::memcpy(payload.data(), in.rest(), payload.size());
    }
  } else {
    // Finite floats from the input (non-finite ones are replaced), encoded.
    std::vector<float> values(n);
    for (float& v : values) {
      v = in.take<float>();
      if (!std::isfinite(v)) {
        v = static_cast<float>(in.take<std::int8_t>());
      }
    }
    payload.resize(codec.max_encoded_bytes(n));
    payload.resize(codec.encode(ctx, host_span<const float>(values), host_span<std::byte>(payload)));
    // Mutations: (position, xor) pairs, then an optional resize.
    const auto flips = in.take<std::uint8_t>() % 8;
    for (int i = 0; i < flips && !payload.empty(); ++i) {
      const auto pos = in.take<std::uint32_t>() % payload.size();
      payload[pos] ^= static_cast<std::byte>(in.take<std::uint8_t>());
    }
    const auto resize = in.take<std::uint8_t>();
    if (resize == 1 && !payload.empty()) {
      payload.resize(in.take<std::uint32_t>() % payload.size());
    } else if (resize == 2) {
      payload.resize(payload.size() + 1 + in.take<std::uint8_t>() % 16);
    }
  }
  std::vector<float> accumulator(n, 0.0f);
  try {
    codec.decode_add(ctx, host_span<const std::byte>(payload), host_span<float>(accumulator));
  } catch (const terse::error&) {
    return 0;  // rejected: the only acceptable failure
  }
  for (float v : accumulator) {
    if (!std::isfinite(v)) {
      std::abort();  // an accepted payload must decode to finite values
    }
  }
  return 0;
}

}  // namespace terse::fuzz

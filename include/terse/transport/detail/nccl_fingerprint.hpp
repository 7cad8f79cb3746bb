#pragma once
/// @file
/// The 64-bit fingerprint of a call that checked mode compares across ranks
/// before moving data.

#include <cstdint>

namespace terse::detail::nccl {

/// Folds call parameters (verb, element type, counts, operator, root, peer,
/// tag, whether the arguments were valid) into 64 bits. Each word goes
/// through the splitmix64 finaliser, so neighbouring values and reordered
/// fields give unrelated fingerprints.
class fingerprint {
 public:
  constexpr fingerprint& add(std::uint64_t word) noexcept
  {
    state_ = mix(state_ ^ mix(word + 0x9E3779B97F4A7C15ull));
    return *this;
  }
  constexpr std::uint64_t value() const noexcept { return state_; }

 private:
  static constexpr std::uint64_t mix(std::uint64_t z) noexcept
  {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  std::uint64_t state_ = 0x7465727365ull;  // "terse"
};

}  // namespace terse::detail::nccl

#pragma once
/// @file
/// `compress::overflow`: what a 16-bit cast (`compress::cast_fp16`,
/// `cast_bf16`) does with a finite value beyond its storage's range
/// (|v| >= 65520 for fp16, >= 3.3961e38 for bf16: the values that round to
/// Inf).

#include <cstdint>
#include <ostream>
#include <string_view>

namespace terse::compress {

enum class overflow : std::uint8_t {
  /// Like NaN or Inf in the input: encode throws errc::non_finite, so in a
  /// collective every rank raises it and nothing changes (the default).
  raise,
  /// The value becomes +-Inf on the wire and the average holds Inf, as an
  /// fp16 allreduce without compression would: a mixed-precision loss scaler
  /// sees the overflow and skips the step. Not with error feedback (the
  /// residual would become infinite): the allreduce refuses the pairing.
  infinity,
  /// Clamped to the largest finite value, silently.
  saturate,
};

constexpr std::string_view to_string(overflow o) noexcept
{
  switch (o) {
    case overflow::raise: return "raise";
    case overflow::infinity: return "infinity";
    case overflow::saturate: return "saturate";
  }
  return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, overflow o)
{
  return os << to_string(o);
}

}  // namespace terse::compress

#pragma once
/// @file
/// `compress::decode(codec, ctx, payload, out)`: decodes a payload into a
/// buffer, overwriting it (decode_add adds into one). Codecs with their own
/// `decode` (identity, the casts, PowerSGD) write the decoded values bit for
/// bit, −0 included; for the others it is `out = +0` then decode_add, so
/// the result is the same except that a decoded −0 reads +0 (sparse codecs
/// leave the entries they do not carry at +0).

#include <terse/core/concepts.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>

#include <algorithm>
#include <cstddef>

namespace terse::compress {

/// Throws what the codec's decode or decode_add throws (errc::malformed_payload
/// for a payload it rejects); `out` is then untouched by a codec's own
/// decode and all +0 by the fallback.
template <concepts::compressor C>
void decode(C& codec, const codec_context& ctx, host_span<const std::byte> payload, host_span<float> out)
{
  if constexpr (concepts::compressor_decodes_into<C>) {
    codec.decode(ctx, payload, out);
  } else {
    std::fill(out.begin(), out.end(), 0.0f);
    codec.decode_add(ctx, payload, out);
  }
}

}  // namespace terse::compress

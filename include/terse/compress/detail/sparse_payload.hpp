#pragma once
/// @file
/// The body every sparsifier writes, and its host decoder:
///
///     header (wire.hpp; param = the codec's float parameter's bits,
///             count = n, aux = c, the number of pairs)
///     c x u32 indices, strictly increasing, each < n
///     c x f32 values, finite
///
/// 24 + 8c bytes. The decoder checks the header, the exact length, every
/// index and every value before it adds anything.

#include <terse/compress/detail/sparse_math.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace terse::detail {

/// Where the index and value arrays of a c-pair body start.
inline std::byte* sparse_indices(std::byte* payload) noexcept
{
  return payload + wire::header_bytes;
}
inline std::byte* sparse_values(std::byte* payload, std::uint64_t count) noexcept
{
  return payload + wire::header_bytes + 4 * count;
}

/// Writes the header of a sparse payload with `count` pairs.
inline void write_sparse_header(host_span<std::byte> out, wire::codec_id id, float parameter, std::uint64_t n,
                                std::uint64_t count)
{
  wire::write_header(out, wire::header{.codec = id, .param = float_bits(parameter), .count = n, .aux = count});
}

/// The encoder's common preconditions.
inline void check_sparse_encode_args(std::size_t n, std::size_t out_size, std::size_t needed, const char* codec)
{
  TERSE_EXPECTS(n <= max_sparse_elements, std::string(codec) +
                                              ": sparse payloads use 32-bit indices; split buckets larger than "
                                              "2^32 values");
  TERSE_EXPECTS(out_size >= needed,
                std::string(codec) + " needs an output of max_encoded_bytes(n) = " + std::to_string(needed) + " bytes");
}

/// What the codec-specific part of decoding checked and found in the header.
struct sparse_view {
  const std::byte* indices = nullptr;
  const std::byte* values = nullptr;
  std::uint64_t count = 0;
};

/// What a codec's header check answers: whether the parameter and pair
/// count are acceptable, and the least magnitude key a value may have.
struct sparse_header_verdict {
  bool ok = false;
  std::uint32_t min_key = 0;
};

/// What the header says once checked: the pair count and the least
/// magnitude key a value may have.
struct sparse_header_facts {
  std::uint64_t count = 0;
  std::uint32_t min_key = 0;
};

/// Checks a sparse payload's header (its first 24 bytes, `head`) and that
/// the whole payload is `payload_size` = 24 + 8c bytes. `check_header(
/// param_bits, count) -> sparse_header_verdict` validates the codec's own
/// fields. Shared by the host decoder and the device decoder (which copies
/// the header to the host).
template <class CheckHeader>
sparse_header_facts check_sparse_header(host_span<const std::byte> head, std::uint64_t payload_size, wire::codec_id id,
                                        std::size_t n, CheckHeader check_header)
{
  const std::string codec(wire::to_string(id));
  TERSE_EXPECTS(n <= max_sparse_elements, codec + ": sparse payloads describe at most 2^32 values");
  const wire::header h = wire::read_header(head, id, n);
  TERSE_CHECK(h.aux <= n, errc::malformed_payload,
              codec + " payload holds " + std::to_string(h.aux) + " pairs for " + std::to_string(n) + " values");
  const sparse_header_verdict verdict = check_header(h.param, h.aux);
  TERSE_CHECK(verdict.ok, errc::malformed_payload,
              codec + " payload has an invalid parameter or pair count for its parameter");
  const std::uint64_t expected = wire::checked_add(wire::header_bytes, wire::checked_mul(h.aux, 8));
  TERSE_CHECK(
      payload_size == expected, errc::malformed_payload,
      codec + " payload is " + std::to_string(payload_size) + " bytes; its header implies " + std::to_string(expected));
  return {h.aux, verdict.min_key};
}

/// Validates header, length, indices (strictly increasing, < n) and values
/// (finite, magnitude key >= the verdict's min_key).
template <class CheckHeader>
sparse_view validate_sparse_payload(host_span<const std::byte> payload, wire::codec_id id, std::size_t n,
                                    CheckHeader check_header)
{
  const sparse_header_facts facts = check_sparse_header(payload, payload.size(), id, n, check_header);
  sparse_view view{payload.data() + wire::header_bytes, payload.data() + wire::header_bytes + 4 * facts.count,
                   facts.count};
  std::uint64_t next_allowed = 0;  // indices strictly increase: each is at least the last + 1
  bool ok = true;
  for (std::uint64_t j = 0; j < view.count; ++j) {
    const auto index = wire::load<std::uint32_t>(view.indices + 4 * j);
    const auto key = magnitude_key_of_bits(wire::load<std::uint32_t>(view.values + 4 * j));
    ok &= index >= next_allowed && index < n && key < non_finite_key && key >= facts.min_key;
    next_allowed = std::uint64_t{index} + 1;
  }
  TERSE_CHECK(
      ok, errc::malformed_payload,
      std::string(wire::to_string(id)) + " payload has an index out of order or out of range, or a non-finite value");
  return view;
}

/// acc[index] += value for every pair of a validated payload.
inline void add_sparse_body(const sparse_view& view, host_span<float> acc) noexcept
{
  for (std::uint64_t j = 0; j < view.count; ++j) {
    const auto index = wire::load<std::uint32_t>(view.indices + 4 * j);
    acc[index] += wire::load<float>(view.values + 4 * j);
  }
}

}  // namespace terse::detail

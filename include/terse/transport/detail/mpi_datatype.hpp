#pragma once
/// @file
/// The MPI datatype each transportable element type travels as, and the
/// names of terse's element types for messages.

#include <terse/core/verbs.hpp>

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace terse::detail::mpi {

/// MPI datatype for `T`. fp16 and bf16 travel as raw 16-bit words: MPI has
/// no 16-bit floats, and terse reduces them itself (in float) anyway.
/// std::byte and uint8_t share one type so either can receive the other.
template <class T>
MPI_Datatype datatype_of() noexcept
{
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, float>) {
    return MPI_FLOAT;
  } else if constexpr (std::is_same_v<U, double>) {
    return MPI_DOUBLE;
  } else if constexpr (std::is_same_v<U, fp16> || std::is_same_v<U, bf16>) {
    return MPI_UINT16_T;
  } else if constexpr (std::is_same_v<U, std::int32_t>) {
    return MPI_INT32_T;
  } else if constexpr (std::is_same_v<U, std::int64_t>) {
    return MPI_INT64_T;
  } else if constexpr (std::is_same_v<U, std::uint32_t>) {
    return MPI_UINT32_T;
  } else if constexpr (std::is_same_v<U, std::uint64_t>) {
    return MPI_UINT64_T;
  } else {
    static_assert(std::is_same_v<U, std::uint8_t> || std::is_same_v<U, std::byte>,
                  "terse::mpi_transport: no MPI datatype for this element type");
    return MPI_UINT8_T;
  }
}

/// The same mapping at run time, for draining a message whose sender named
/// its element type in a header.
inline MPI_Datatype datatype_of(data_type type) noexcept
{
  switch (type) {
    case data_type::f32: return MPI_FLOAT;
    case data_type::f64: return MPI_DOUBLE;
    case data_type::f16:
    case data_type::bf16: return MPI_UINT16_T;
    case data_type::i32: return MPI_INT32_T;
    case data_type::i64: return MPI_INT64_T;
    case data_type::u32: return MPI_UINT32_T;
    case data_type::u64: return MPI_UINT64_T;
    case data_type::u8: return MPI_UINT8_T;
  }
  return MPI_UINT8_T;
}

constexpr std::string_view name_of(data_type type) noexcept
{
  switch (type) {
    case data_type::f32: return "float";
    case data_type::f64: return "double";
    case data_type::f16: return "fp16";
    case data_type::bf16: return "bf16";
    case data_type::i32: return "int32";
    case data_type::i64: return "int64";
    case data_type::u32: return "uint32";
    case data_type::u64: return "uint64";
    case data_type::u8: return "uint8/byte";
  }
  return "unknown";
}

/// True when `value` names one of terse's element types (a header from the
/// wire is checked before it is trusted).
constexpr bool is_data_type(std::uint64_t value) noexcept
{
  return value <= static_cast<std::uint64_t>(data_type::u8);
}

}  // namespace terse::detail::mpi

#pragma once
/// @file
/// How terse's element types and reduction operators map onto NCCL's.

#include <terse/core/numeric.hpp>
#include <terse/core/verbs.hpp>

#include <nccl.h>

#include <type_traits>

// ncclConfig_t (non-blocking communicators), ncclCommFinalize, ncclAvg and
// ncclBfloat16 are all there from NCCL 2.14 on.
static_assert(NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0), "terse::nccl_transport needs NCCL 2.14 or newer");

namespace terse::detail::nccl {

/// NCCL's name for a transportable element type; std::byte and uint8_t both
/// travel as ncclUint8.
constexpr ncclDataType_t to_nccl(data_type type) noexcept
{
  switch (type) {
    case data_type::f32: return ncclFloat32;
    case data_type::f64: return ncclFloat64;
    case data_type::f16: return ncclFloat16;
    case data_type::bf16: return ncclBfloat16;
    case data_type::i32: return ncclInt32;
    case data_type::i64: return ncclInt64;
    case data_type::u32: return ncclUint32;
    case data_type::u64: return ncclUint64;
    case data_type::u8: return ncclUint8;
  }
  return ncclUint8;
}

/// NCCL's reduction operator; `average` is NCCL's own ncclAvg, so the
/// division happens once, in NCCL's accumulator.
constexpr ncclRedOp_t to_nccl(reduce_op op) noexcept
{
  switch (op) {
    case reduce_op::sum: return ncclSum;
    case reduce_op::average: return ncclAvg;
    case reduce_op::max: return ncclMax;
    case reduce_op::min: return ncclMin;
  }
  return ncclSum;
}

/// Whether `op` is defined for element type T: the contract makes `average`
/// of an integer type an invalid argument.
template <class T>
constexpr bool supports(reduce_op op) noexcept
{
  using value = std::remove_cv_t<T>;
  constexpr bool floating =
      std::is_floating_point_v<value> || std::is_same_v<value, fp16> || std::is_same_v<value, bf16>;
  return op != reduce_op::average || floating;
}

}  // namespace terse::detail::nccl

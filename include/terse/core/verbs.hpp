#pragma once
/// @file
/// Vocabulary every transport speaks: the verbs, reduction operators,
/// element types and the options each transport is built with.

#include <terse/core/numeric.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace terse {

/// How a reduction combines the ranks' values. `average` is the sum divided
/// by the world size, computed in the accumulator type.
enum class reduce_op : std::uint8_t { sum, average, max, min };

/// The collective and point-to-point verbs, for metering and checking.
enum class verb : std::uint8_t {
  allreduce,
  reduce_scatter,
  allgather,
  allgatherv,
  broadcast,
  send,
  recv,
  barrier,
};
inline constexpr std::size_t verb_count = 8;

constexpr std::string_view to_string(verb v) noexcept
{
  switch (v) {
    case verb::allreduce: return "allreduce";
    case verb::reduce_scatter: return "reduce_scatter";
    case verb::allgather: return "allgather";
    case verb::allgatherv: return "allgatherv";
    case verb::broadcast: return "broadcast";
    case verb::send: return "send";
    case verb::recv: return "recv";
    case verb::barrier: return "barrier";
  }
  return "unknown";
}

constexpr std::string_view to_string(reduce_op op) noexcept
{
  switch (op) {
    case reduce_op::sum: return "sum";
    case reduce_op::average: return "average";
    case reduce_op::max: return "max";
    case reduce_op::min: return "min";
  }
  return "unknown";
}

/// Element types that may cross a transport.
enum class data_type : std::uint8_t { f32, f64, f16, bf16, i32, i64, u32, u64, u8 };

namespace detail {
template <class T>
struct data_type_of;
template <>
struct data_type_of<float> : std::integral_constant<data_type, data_type::f32> {
};
template <>
struct data_type_of<double> : std::integral_constant<data_type, data_type::f64> {
};
template <>
struct data_type_of<fp16> : std::integral_constant<data_type, data_type::f16> {
};
template <>
struct data_type_of<bf16> : std::integral_constant<data_type, data_type::bf16> {
};
template <>
struct data_type_of<std::int32_t> : std::integral_constant<data_type, data_type::i32> {
};
template <>
struct data_type_of<std::int64_t> : std::integral_constant<data_type, data_type::i64> {
};
template <>
struct data_type_of<std::uint32_t> : std::integral_constant<data_type, data_type::u32> {
};
template <>
struct data_type_of<std::uint64_t> : std::integral_constant<data_type, data_type::u64> {
};
template <>
struct data_type_of<std::uint8_t> : std::integral_constant<data_type, data_type::u8> {
};
template <>
struct data_type_of<std::byte> : std::integral_constant<data_type, data_type::u8> {
};
}  // namespace detail

/// True for the element types a transport can move.
template <class T>
concept transportable = requires
{
  detail::data_type_of<std::remove_cv_t<T>>::value;
};

/// True for the element types a transport can reduce (sum, average, max, min).
template <class T>
concept reducible = transportable<T> && !std::is_same_v<std::remove_cv_t<T>, std::byte>;

template <transportable T>
inline constexpr data_type data_type_v = detail::data_type_of<std::remove_cv_t<T>>::value;

constexpr std::size_t size_of(data_type type) noexcept
{
  switch (type) {
    case data_type::f64:
    case data_type::i64:
    case data_type::u64: return 8;
    case data_type::f32:
    case data_type::i32:
    case data_type::u32: return 4;
    case data_type::f16:
    case data_type::bf16: return 2;
    case data_type::u8: return 1;
  }
  return 0;
}

/// What one dead rank breaks.
enum class failure_scope : std::uint8_t {
  world,  ///< every later verb on every rank raises errc::peer_failed
  peer,   ///< only exchanges with that rank fail (terse::peer_error naming it); world collectives still fail
};

/// Options every transport is built with.
struct transport_options {
  /// Longest a blocking verb waits for its peers before raising
  /// terse::error(errc::timeout). A dead or silent peer never hangs a rank.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  /// Check that all ranks make the same call (verb, type, count, operator,
  /// root) before moving data; a mismatch raises errc::mismatch on every rank.
  bool checked = TERSE_CHECKED_DEFAULT;
  /// failure_scope::peer: a dead rank fails only the point-to-point
  /// messages and grouped exchanges that involve it (docs/gossip.md,
  /// "Failures"): the local transport fully; the MPI transport for its
  /// blocking send, recv and sendrecv only (a silent peer raises
  /// terse::peer_error with errc::timeout); NCCL refuses it (errc::unsupported).
  failure_scope failures = failure_scope::world;
};

}  // namespace terse

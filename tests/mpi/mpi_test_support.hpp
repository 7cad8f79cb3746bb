#pragma once
// Helpers shared by the MPI transport tests: the world, typed test values,
// outcome names for CHECKs, and cross-rank comparisons that use plain MPI on
// MPI_COMM_WORLD (never the transport under test).

#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>
#include <terse/transport/mpi.hpp>

#include <doctest/doctest.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace mpi_test {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

inline int world_rank()
{
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int world_size()
{
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

/// Options for tests that should not fail on time: long enough never to
/// fire on a loaded machine, short enough that a bug fails instead of hangs.
inline terse::transport_options patient(bool checked = true)
{
  return terse::transport_options{.timeout = std::chrono::seconds(20), .checked = checked};
}

/// A small integer as T (exact in every element type for |v| <= 255).
template <class T>
T from_int(int v)
{
  if constexpr (std::is_same_v<T, terse::fp16> || std::is_same_v<T, terse::bf16>) {
    return T(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, std::byte>) {
    return static_cast<std::byte>(v);
  } else {
    return static_cast<T>(v);
  }
}

template <class T>
double to_double(T value)
{
  if constexpr (std::is_same_v<T, terse::fp16> || std::is_same_v<T, terse::bf16>) {
    return static_cast<double>(static_cast<float>(value));
  } else if constexpr (std::is_same_v<T, std::byte>) {
    return static_cast<double>(std::to_integer<int>(value));
  } else {
    return static_cast<double>(value);
  }
}

/// Bitwise equality of two buffers of the same length.
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b)
{
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

/// The first index where `got` differs from `want` as numbers, or -1.
template <class T>
long first_difference(const std::vector<T>& got, const std::vector<T>& want)
{
  if (got.size() != want.size()) {
    return 0;
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (to_double(got[i]) != to_double(want[i])) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

/// Gathers every rank's bytes to rank 0 and compares them bit for bit; every
/// rank gets the verdict.
inline bool same_on_all_ranks(const void* data, std::size_t bytes)
{
  const int size = world_size();
  std::vector<std::byte> all(world_rank() == 0 ? bytes * static_cast<std::size_t>(size) : 0);
  MPI_Gather(data, static_cast<int>(bytes), MPI_BYTE, all.data(), static_cast<int>(bytes), MPI_BYTE, 0, MPI_COMM_WORLD);
  int same = 1;
  if (world_rank() == 0) {
    for (int r = 1; r < size; ++r) {
      if (bytes != 0 && std::memcmp(all.data(), all.data() + bytes * static_cast<std::size_t>(r), bytes) != 0) {
        same = 0;
      }
    }
  }
  MPI_Bcast(&same, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return same != 0;
}

template <class T>
bool same_on_all_ranks(const std::vector<T>& values)
{
  return same_on_all_ranks(values.data(), values.size() * sizeof(T));
}

/// "no error", or the name of the terse::errc the call raised.
template <class F>
std::string outcome(F&& call)
{
  try {
    call();
  } catch (const terse::error& e) {
    return std::string(terse::to_string(e.code()));
  }
  return "no error";
}

inline std::string name(terse::errc code)
{
  return std::string(terse::to_string(code));
}

inline double milliseconds_since(clock::time_point start)
{
  return std::chrono::duration<double, std::milli>(clock::now() - start).count();
}

/// Every rank's input for random-data tests: magnitudes spread over 2^-8 ..
/// 2^8 so the order of additions changes the rounded result.
inline float random_value(int rank, std::size_t index, std::uint64_t seed)
{
  const terse::random_stream stream{seed, 0, static_cast<std::uint32_t>(rank)};
  const std::uint32_t bits = stream.bits(index);
  const float unit = terse::uniform_float(bits) * 2.0f - 1.0f;
  const int exponent = static_cast<int>(stream.bits(index + (std::uint64_t{1} << 40)) % 17u) - 8;
  return std::ldexp(unit, exponent);
}

}  // namespace mpi_test

#pragma once
/// @file
/// Saving and restoring policy state (feedback buffers, momentum, PowerSGD
/// Q, schedule counters). A stateful policy provides
///
///     void save(terse::state_writer&) const;
///     void load(terse::state_reader&);
///
/// and writes named sections of scalars and arrays. The reader checks every
/// section name, scalar size and array length against what it expects, so a
/// blob from another layout, codec or build raises terse::error(errc::io)
/// naming the first disagreement, never a silent misread. It reads strictly
/// forward (a pipe or a socket will do: nothing seeks), and an array length
/// above the reader's limit is refused before anything is allocated for it.

#include <terse/core/error.hpp>
#include <terse/core/span.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>

namespace terse {

namespace detail {
/// Elements of policy state that do not scale with a collective's buffer
/// (FDA's sketch): collectives allow this much beyond their own size.
inline constexpr std::uint64_t fixed_state_room = std::uint64_t{1} << 22;
}  // namespace detail

class state_writer {
 public:
  explicit state_writer(std::ostream& out) : out_(&out) {}

  /// Starts a named section (a policy's name, or a bucket's).
  void section(std::string_view name)
  {
    put<std::uint32_t>(section_marker);
    put<std::uint32_t>(static_cast<std::uint32_t>(name.size()));
    raw(name.data(), name.size());
  }

  template <class T>
  requires std::is_trivially_copyable_v<T>
  void value(const T& v)
  {
    put<std::uint32_t>(static_cast<std::uint32_t>(sizeof(T)));
    raw(&v, sizeof(T));
  }

  template <class T>
  requires std::is_trivially_copyable_v<T>
  void array(host_span<const T> values)
  {
    put<std::uint32_t>(static_cast<std::uint32_t>(sizeof(T)));
    put<std::uint64_t>(values.size());
    raw(values.data(), values.size_bytes());
  }

 private:
  friend class state_reader;
  static constexpr std::uint32_t section_marker = 0x53454354;  // "SECT"

  template <class T>
  void put(T v)
  {
    raw(&v, sizeof(T));
  }
  void raw(const void* data, std::size_t bytes)
  {
    out_->write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    TERSE_CHECK(out_->good(), errc::io, "writing terse state failed");
  }

  std::ostream* out_;
};

class state_reader {
 public:
  explicit state_reader(std::istream& in) : in_(&in) {}

  /// The most elements an array may claim. Collectives set it from their
  /// layout, so a corrupt length raises errc::io instead of allocating.
  void limit_arrays(std::uint64_t elements) noexcept { limit_ = elements; }
  std::uint64_t array_limit() const noexcept { return limit_; }

  /// Expects the section `name` next.
  void section(std::string_view name)
  {
    TERSE_CHECK(!pending_, errc::io, "terse state: expected section '" + std::string(name) + "', found an array");
    TERSE_CHECK(get<std::uint32_t>() == state_writer::section_marker, errc::io,
                "terse state: expected section '" + std::string(name) + "'");
    const auto length = get<std::uint32_t>();
    TERSE_CHECK(length == name.size(), errc::io,
                "terse state: expected section '" + std::string(name) + "', found another");
    std::string found(length, '\0');
    raw(found.data(), length);
    TERSE_CHECK(found == name, errc::io,
                "terse state: expected section '" + std::string(name) + "', found '" + found + "'");
  }

  template <class T>
  requires std::is_trivially_copyable_v<T> T value()
  {
    TERSE_CHECK(!pending_, errc::io, "terse state: expected a scalar, found an array");
    TERSE_CHECK(get<std::uint32_t>() == sizeof(T), errc::io, "terse state: a scalar has another size");
    T v;
    raw(&v, sizeof(T));
    return v;
  }

  /// Reads an array that must have exactly `out.size()` elements.
  template <class T>
  requires std::is_trivially_copyable_v<T>
  void array(host_span<T> out)
  {
    const array_header header = next_array();
    pending_ = false;
    TERSE_CHECK(header.element_size == sizeof(T), errc::io, "terse state: array elements have another size");
    TERSE_CHECK(header.count == out.size(), errc::io,
                "terse state: array of " + std::to_string(header.count) + " elements where " +
                    std::to_string(out.size()) + " are expected");
    raw(out.data(), out.size_bytes());
  }

  /// The length of the next array, without consuming it (for state whose
  /// size is itself saved). At most array_limit().
  std::uint64_t peek_array_length() { return next_array().count; }

 private:
  struct array_header {
    std::uint32_t element_size = 0;
    std::uint64_t count = 0;
  };

  // The next array's header: read once, kept until the array is read.
  array_header next_array()
  {
    if (!pending_) {
      header_.element_size = get<std::uint32_t>();
      header_.count = get<std::uint64_t>();
      TERSE_CHECK(header_.element_size != 0, errc::io, "terse state: bad array");
      pending_ = true;
    }
    TERSE_CHECK(header_.count <= limit_, errc::io,
                "terse state: an array claims " + std::to_string(header_.count) + " elements, more than the " +
                    std::to_string(limit_) + " this state can hold");
    return header_;
  }

  template <class T>
  T get()
  {
    T v;
    raw(&v, sizeof(T));
    return v;
  }
  void raw(void* data, std::size_t bytes)
  {
    in_->read(static_cast<char*>(data), static_cast<std::streamsize>(bytes));
    TERSE_CHECK(in_->gcount() == static_cast<std::streamsize>(bytes), errc::io, "terse state ends early");
  }

  std::istream* in_;
  std::uint64_t limit_ = std::uint64_t{1} << 40;
  array_header header_;
  bool pending_ = false;
};

}  // namespace terse

#pragma once
/// @file
/// `terse::metered<Inner>`: counts, per verb, the calls this rank made and
/// the bytes a bandwidth-optimal algorithm sends and receives for them,
/// while the inner transport moves the data.
///
/// @code
/// terse::run_local(4, [&](terse::local_transport& t) {
///   terse::metered m(t);  // wraps t by reference
///   m.allreduce(terse::host_span<float>(grad), terse::reduce_op::average);
///   std::cout << m.counts();  // per-verb calls, bytes sent, bytes received
/// });
/// @endcode
///
/// Bytes per call for rank r of W, N the bytes of the full buffer (the table
/// "What the decorators count" in docs/transports.md), in exact integers:
/// - allreduce: sent = received = 2 (N - own block), own block as
///   detail::block_of splits the elements; averaged over the ranks this is
///   2 (W-1)/W N exactly.
/// - reduce_scatter (N = input), allgather (N = output): sent = received =
///   N - own block = (W-1)/W N.
/// - allgatherv: sent (W-1) own, received total - own.
/// - broadcast: the root sends N, every other rank receives N.
/// - send: sent N; recv: received N; sendrecv counts as one send call and
///   one recv call, each with its own bytes.
/// - barrier: a call, no bytes.
/// - a grouped exchange (start_exchange): one verb::send call, with sent =
///   the bytes of its sends to other ranks and received = the bytes of its
///   receives from other ranks, both booked under verb::send; messages to
///   this rank itself are free. Counted when start_exchange returns.
/// A world of one rank moves nothing. A call is counted when it returns:
/// one that throws moved nothing certain and is not counted.
///
/// `split(colour, key)` and `split_shared()` (when `Inner` has them) return a
/// `metered` over the inner transport's sub-transport, held by value, with
/// counters of its own starting at zero; the split itself is not counted.

#include <terse/core/verbs.hpp>
#include <terse/transport/detail/decorator_base.hpp>
#include <terse/transport/detail/decorator_cost.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>

namespace terse {

/// One verb's counters.
struct verb_meter {
  std::uint64_t calls = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;

  verb_meter& operator+=(const verb_meter& other) noexcept
  {
    calls += other.calls;
    bytes_sent += other.bytes_sent;
    bytes_received += other.bytes_received;
    return *this;
  }
  friend bool operator==(const verb_meter&, const verb_meter&) = default;
};

/// Counters for every verb, indexed by terse::verb.
struct meter {
  std::array<verb_meter, verb_count> verbs{};

  verb_meter& operator[](verb v) noexcept { return verbs[static_cast<std::size_t>(v)]; }
  const verb_meter& operator[](verb v) const noexcept { return verbs[static_cast<std::size_t>(v)]; }

  /// All verbs together.
  verb_meter total() const noexcept
  {
    verb_meter sum;
    for (const auto& v : verbs) {
      sum += v;
    }
    return sum;
  }

  void reset() noexcept { verbs = {}; }
  friend bool operator==(const meter&, const meter&) = default;
};

inline std::ostream& operator<<(std::ostream& out, const verb_meter& v)
{
  return out << v.calls << " calls, " << v.bytes_sent << " B sent, " << v.bytes_received << " B received";
}

/// One line per verb that was called, then the total.
inline std::ostream& operator<<(std::ostream& out, const meter& m)
{
  for (std::size_t i = 0; i < verb_count; ++i) {
    if (m.verbs[i].calls != 0) {
      out << to_string(static_cast<verb>(i)) << ": " << m.verbs[i] << '\n';
    }
  }
  return out << "total: " << m.total() << '\n';
}

inline std::string to_string(const meter& m)
{
  std::ostringstream text;
  text << m;
  return text.str();
}

/// Counts calls and bytes per verb on this rank; see the file comment for
/// the byte rules. Has exactly the verbs `Inner` has.
/// @tparam Inner a terse transport with `rank()` and `size()` and any of the
///         verbs; a value type is held by value (move it in), an lvalue
///         reference type (`metered<local_transport&>`) by reference.
///         Construction from an lvalue deduces the reference:
///         `terse::metered m(t);`.
template <class Inner>
class metered : public detail::decorator_base<metered<Inner>, Inner> {
  using base = detail::decorator_base<metered<Inner>, Inner>;
  friend base;

 public:
  explicit metered(Inner inner) : base(std::forward<Inner>(inner)) {}

  /// This rank's counters since construction or the last reset().
  const meter& counts() const noexcept { return counts_; }
  const verb_meter& counts(verb v) const noexcept { return counts_[v]; }
  void reset() noexcept { counts_.reset(); }

 private:
  template <class Forward>
  void intercept(const detail::verb_call& call, Forward& forward)
  {
    forward();
    const detail::traffic moved = detail::traffic_of(call, this->rank(), this->size());
    if (call.exchange) {
      ++counts_[verb::send].calls;
      counts_[verb::send].bytes_sent += moved.sent;
      ++counts_[verb::recv].calls;
      counts_[verb::recv].bytes_received += moved.received;
      return;
    }
    verb_meter& counter = counts_[call.what];
    ++counter.calls;
    counter.bytes_sent += moved.sent;
    counter.bytes_received += moved.received;
  }

  // A sub-transport counts its own traffic from zero.
  template <class Forward>
  auto intercept_split(Forward& forward)
  {
    return metered<decltype(forward())>(forward());
  }

  meter counts_;
};

// Deduce a reference from an lvalue, a value from an rvalue.
template <class T>
metered(T&&) -> metered<T>;

}  // namespace terse

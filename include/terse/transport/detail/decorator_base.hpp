#pragma once
/// @file
/// (Over 400 lines: one short forwarding body per verb and overload.)
/// The forwarding base of the transport decorators (metered,
/// simulated_network, faulty). It repeats the verb list once: each verb
/// exists only when the inner transport has it (so a send/recv-only inner
/// gives a send/recv-only decorator), describes the call's sizes in a
/// verb_call and hands a "forward to the inner transport" callable to the
/// decorator's `intercept(call, forward)`, which may count, charge time,
/// delay or throw around it.
///
/// A grouped exchange (core/exchange.hpp) goes through `intercept` as well,
/// as a verb_call with `grouped` set, unless the decorator has
/// `exchange_id intercept_exchange(call, forward)` (forward() then returns
/// the inner id). `test` and `wait` go to the decorator's
/// `intercept_test(id, forward)` / `intercept_wait(id, forward)` when it has
/// them, else straight to the inner transport.
///
/// `split` and `split_shared` exist when the inner transport has them: the
/// decorator's `intercept_split(forward)` gets the inner transport's split
/// result from forward() and returns the same decorator over it, held by
/// value, with what of its own configuration carries over.

#include <terse/core/concepts.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/span.hpp>
#include <terse/core/verbs.hpp>
#include <terse/transport/detail/decorator_call.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

namespace terse::detail {

// What the inner transport has. Trailing `Extra` arguments (a stream, say)
// are passed through untouched.

template <class I, class T, memory_space S, class... Extra>
concept inner_allreduce = requires(I& t, span<const T, S> in, span<T, S> out, reduce_op op, Extra&&... extra)
{
  t.allreduce(in, out, op, std::forward<Extra>(extra)...);
};

template <class I, class T, memory_space S, class... Extra>
concept inner_allreduce_in_place = requires(I& t, span<T, S> buffer, reduce_op op, Extra&&... extra)
{
  t.allreduce(buffer, op, std::forward<Extra>(extra)...);
};

template <class I, class T, memory_space S, class... Extra>
concept inner_reduce_scatter = requires(I& t, span<const T, S> in, span<T, S> out, reduce_op op, Extra&&... extra)
{
  t.reduce_scatter(in, out, op, std::forward<Extra>(extra)...);
};

template <class I, class T, memory_space S, class... Extra>
concept inner_allgather = requires(I& t, span<const T, S> in, span<T, S> out, Extra&&... extra)
{
  t.allgather(in, out, std::forward<Extra>(extra)...);
};

template <class I, class T, memory_space S, class... Extra>
concept inner_allgatherv = requires(I& t, span<const T, S> in, span<T, S> out, host_span<const std::size_t> counts,
                                    Extra&&... extra)
{
  t.allgatherv(in, out, counts, std::forward<Extra>(extra)...);
};

template <class I, class T, memory_space S, class... Extra>
concept inner_broadcast = requires(I& t, span<T, S> buffer, int root, Extra&&... extra)
{
  t.broadcast(buffer, root, std::forward<Extra>(extra)...);
};

template <class I, class T, memory_space S, class... Extra>
concept inner_send = requires(I& t, span<T, S> buffer, int peer, int tag, Extra&&... extra)
{
  t.send(buffer, peer, tag, std::forward<Extra>(extra)...);
};

template <class I, class T, memory_space S, class... Extra>
concept inner_recv = requires(I& t, span<T, S> buffer, int peer, int tag, Extra&&... extra)
{
  t.recv(buffer, peer, tag, std::forward<Extra>(extra)...);
};

template <class I, class T, memory_space S, class... Extra>
concept inner_sendrecv = requires(I& t, span<const T, S> send_buffer, span<T, S> recv_buffer, int peer, int tag,
                                  Extra&&... extra)
{
  t.sendrecv(send_buffer, peer, recv_buffer, peer, tag, std::forward<Extra>(extra)...);
};

template <class I, class... Extra>
concept inner_barrier = requires(I& t, Extra&&... extra)
{
  t.barrier(std::forward<Extra>(extra)...);
};

template <class I, memory_space S>
concept inner_start_exchange = requires(I& t, host_span<const outgoing<S>> sends, host_span<const incoming<S>> recvs)
{
  {
    t.start_exchange(sends, recvs, 0)
    } -> std::same_as<exchange_id>;
};

template <class I>
concept inner_test_exchange = requires(I& t, exchange_id id)
{
  {
    t.test(id)
    } -> std::same_as<bool>;
};

template <class I>
concept inner_wait_exchange = requires(I& t, exchange_id id)
{
  t.wait(id);
};

/// An inner transport that reports failed peers per exchange
/// (failure_scope::peer) instead of raising.
template <class I>
concept inner_reports_peers = requires(I& t, exchange_id id, exchange_report& report)
{
  {
    t.test(id, report)
    } -> std::same_as<bool>;
  t.wait(id, report);
};

template <class I>
concept inner_split = requires(I& t, int colour, int key)
{
  t.split(colour, key);
};

template <class I>
concept inner_split_shared = requires(I& t)
{
  t.split_shared();
};

/// The transport under every decorator layer of `t` (t itself when it is
/// no decorator): set-up traffic of a decorator (a split agreeing on who is
/// who) goes there, so it is neither metered, nor charged, nor faulted.
template <class T>
decltype(auto) undecorated(T& t) noexcept
{
  if constexpr (requires { t.inner(); }) {
    return undecorated(t.inner());
  } else {
    return (t);
  }
}

template <class I>
concept inner_has_options = requires(const I& t)
{
  t.options();
};

template <class I>
concept inner_has_healthy = requires(const I& t)
{
  {
    t.healthy()
    } -> std::convertible_to<bool>;
};

template <class I>
concept inner_has_abort = requires(I& t, std::string_view reason)
{
  t.abort(reason);
};

/// CRTP base. Like the transport it wraps, a decorator belongs to one rank
/// and is used from that rank's thread only. `Derived` provides
/// `template <class F> void intercept(const verb_call&, F& forward)` and
/// must call `forward()` exactly once to run the verb (or throw instead).
/// @tparam Inner the wrapped transport: a value type (held by value, moved
///         in) or an lvalue reference type (held by reference; the referred
///         transport must outlive the decorator).
template <class Derived, class Inner>
class decorator_base {
  static_assert(!std::is_rvalue_reference_v<Inner>,
                "a decorator holds its inner transport by value or by lvalue "
                "reference: write decorator<T> or decorator<T&>");

 public:
  using inner_type = std::remove_reference_t<Inner>;

  /// Whatever the inner transport accepts.
  template <memory_space S>
  static constexpr bool accepts_memory = concepts::transport_accepts_memory<inner_type, S>;

  decorator_base(const decorator_base&) = delete;
  decorator_base& operator=(const decorator_base&) = delete;
  decorator_base(decorator_base&&) noexcept(std::is_nothrow_move_constructible_v<Inner>) = default;
  decorator_base& operator=(decorator_base&&) = delete;
  ~decorator_base() = default;

  /// The wrapped transport, e.g. to read a lower decorator's counters.
  inner_type& inner() noexcept { return inner_; }
  const inner_type& inner() const noexcept { return inner_; }

  int rank() const noexcept(noexcept(std::declval<const inner_type&>().rank())) { return inner_.rank(); }
  int size() const noexcept(noexcept(std::declval<const inner_type&>().size())) { return inner_.size(); }

  decltype(auto) options() const requires inner_has_options<inner_type> { return inner_.options(); }
  bool healthy() const requires inner_has_healthy<inner_type> { return inner_.healthy(); }
  void abort(std::string_view reason) requires inner_has_abort<inner_type> { inner_.abort(reason); }

  template <class T, memory_space S, class... Extra>
  requires inner_allreduce<inner_type, T, S, Extra...>
  void allreduce(std::type_identity_t<span<const T, S>> in, span<T, S> out, reduce_op op, Extra&&... extra)
  {
    run(verb_call{.what = verb::allreduce, .element_bytes = sizeof(T), .count = in.size()},
        [&] { inner_.allreduce(in, out, op, std::forward<Extra>(extra)...); });
  }

  /// In place: forwarded to the inner in-place overload when it has one.
  template <class T, memory_space S, class... Extra>
  requires inner_allreduce_in_place<inner_type, T, S, Extra...> || inner_allreduce<inner_type, T, S, Extra...>
  void allreduce(span<T, S> buffer, reduce_op op, Extra&&... extra)
  {
    run(verb_call{.what = verb::allreduce, .element_bytes = sizeof(T), .count = buffer.size()}, [&] {
      if constexpr (inner_allreduce_in_place<inner_type, T, S, Extra...>) {
        inner_.allreduce(buffer, op, std::forward<Extra>(extra)...);
      } else {
        inner_.allreduce(span<const T, S>(buffer), buffer, op, std::forward<Extra>(extra)...);
      }
    });
  }

  template <class T, memory_space S, class... Extra>
  requires inner_reduce_scatter<inner_type, T, S, Extra...>
  void reduce_scatter(std::type_identity_t<span<const T, S>> in, span<T, S> out, reduce_op op, Extra&&... extra)
  {
    run(verb_call{.what = verb::reduce_scatter, .element_bytes = sizeof(T), .count = in.size()},
        [&] { inner_.reduce_scatter(in, out, op, std::forward<Extra>(extra)...); });
  }

  template <class T, memory_space S, class... Extra>
  requires inner_allgather<inner_type, T, S, Extra...>
  void allgather(std::type_identity_t<span<const T, S>> in, span<T, S> out, Extra&&... extra)
  {
    run(verb_call{.what = verb::allgather, .element_bytes = sizeof(T), .count = out.size()},
        [&] { inner_.allgather(in, out, std::forward<Extra>(extra)...); });
  }

  template <class T, memory_space S, class... Extra>
  requires inner_allgatherv<inner_type, T, S, Extra...>
  void allgatherv(std::type_identity_t<span<const T, S>> in, span<T, S> out, host_span<const std::size_t> counts,
                  Extra&&... extra)
  {
    const std::size_t smallest = counts.empty() ? 0 : *std::min_element(counts.begin(), counts.end());
    run(verb_call{.what = verb::allgatherv,
                  .element_bytes = sizeof(T),
                  .count = out.size(),
                  .own_count = in.size(),
                  .smallest_count = smallest},
        [&] { inner_.allgatherv(in, out, counts, std::forward<Extra>(extra)...); });
  }

  template <class T, memory_space S, class... Extra>
  requires inner_broadcast<inner_type, T, S, Extra...>
  void broadcast(span<T, S> buffer, int root, Extra&&... extra)
  {
    run(verb_call{.what = verb::broadcast, .element_bytes = sizeof(T), .count = buffer.size(), .root = root},
        [&] { inner_.broadcast(buffer, root, std::forward<Extra>(extra)...); });
  }

  template <class T, memory_space S, class... Extra>
  requires inner_send<inner_type, T, S, Extra...>
  void send(span<T, S> buffer, int peer, int tag, Extra&&... extra)
  {
    run(verb_call{.what = verb::send, .element_bytes = sizeof(T), .count = buffer.size(), .peer = peer},
        [&] { inner_.send(buffer, peer, tag, std::forward<Extra>(extra)...); });
  }

  template <class T, memory_space S, class... Extra>
  requires inner_recv<inner_type, T, S, Extra...>
  void recv(span<T, S> buffer, int peer, int tag, Extra&&... extra)
  {
    run(verb_call{.what = verb::recv, .element_bytes = sizeof(T), .count = buffer.size(), .peer = peer},
        [&] { inner_.recv(buffer, peer, tag, std::forward<Extra>(extra)...); });
  }

  /// Only when the inner transport has sendrecv: composing it from send and
  /// recv could deadlock where send blocks.
  template <class T, memory_space S, class... Extra>
  requires inner_sendrecv<inner_type, T, S, Extra...>
  void sendrecv(std::type_identity_t<span<const T, S>> send_buffer, int dest, span<T, S> recv_buffer, int source,
                int tag, Extra&&... extra)
  {
    run(verb_call{.what = verb::send,
                  .exchange = true,
                  .element_bytes = sizeof(T),
                  .count = send_buffer.size(),
                  .received_count = recv_buffer.size(),
                  .peer = dest,
                  .source = source},
        [&] { inner_.sendrecv(send_buffer, dest, recv_buffer, source, tag, std::forward<Extra>(extra)...); });
  }

  /// Booked as one verb::send call with `grouped` set; the sizes count only
  /// messages to and from other ranks.
  template <memory_space S>
  requires inner_start_exchange<inner_type, S> exchange_id start_exchange(host_span<const outgoing<S>> sends,
                                                                          host_span<const incoming<S>> recvs, int tag)
  {
    verb_call call{.what = verb::send, .grouped = true};
    call.messages = exchange_messages{.sends = sends.data(),
                                      .send_count = sends.size(),
                                      .send_at = &read_message<outgoing<S>>,
                                      .recvs = recvs.data(),
                                      .recv_count = recvs.size(),
                                      .recv_at = &read_message<incoming<S>>};
    const int me = inner_.rank();
    for (const outgoing<S>& message : sends) {
      call.bytes_to_peers += message.peer != me ? message.bytes.size_bytes() : 0;
    }
    for (const incoming<S>& message : recvs) {
      call.bytes_from_peers += message.peer != me ? message.bytes.size_bytes() : 0;
    }
    auto forward = [&] { return inner_.start_exchange(sends, recvs, tag); };
    if constexpr (requires(Derived & d) { d.intercept_exchange(call, forward); }) {
      return static_cast<Derived&>(*this).intercept_exchange(call, forward);
    } else {
      exchange_id id{};
      run(call, [&] { id = forward(); });
      return id;
    }
  }

  bool test(exchange_id id) requires inner_test_exchange<inner_type>
  {
    auto forward = [&] { return inner_.test(id); };
    if constexpr (requires(Derived & d) { d.intercept_test(id, forward); }) {
      return static_cast<Derived&>(*this).intercept_test(id, forward);
    } else {
      return forward();
    }
  }

  void wait(exchange_id id) requires inner_wait_exchange<inner_type>
  {
    auto forward = [&] { inner_.wait(id); };
    if constexpr (requires(Derived & d) { d.intercept_wait(id, forward); }) {
      static_cast<Derived&>(*this).intercept_wait(id, forward);
    } else {
      forward();
    }
  }

  /// The same with failed peers reported in `report` (failure_scope::peer);
  /// the decorator's test and wait hooks see it like any other completion.
  bool test(exchange_id id, exchange_report& report) requires inner_reports_peers<inner_type>
  {
    auto forward = [&] { return inner_.test(id, report); };
    if constexpr (requires(Derived & d) { d.intercept_test(id, forward); }) {
      return static_cast<Derived&>(*this).intercept_test(id, forward);
    } else {
      return forward();
    }
  }

  void wait(exchange_id id, exchange_report& report) requires inner_reports_peers<inner_type>
  {
    auto forward = [&] { inner_.wait(id, report); };
    if constexpr (requires(Derived & d) { d.intercept_wait(id, forward); }) {
      static_cast<Derived&>(*this).intercept_wait(id, forward);
    } else {
      forward();
    }
  }

  template <class... Extra>
  requires inner_barrier<inner_type, Extra...>
  void barrier(Extra&&... extra)
  {
    run(verb_call{.what = verb::barrier}, [&] { inner_.barrier(std::forward<Extra>(extra)...); });
  }

  /// The same decorator over `inner().split(colour, key)`, held by value
  /// (collective, like the inner split; see the decorator for what carries
  /// over). Not itself a metered, charged or faulted verb call.
  auto split(int colour, int key) requires inner_split<inner_type>
  {
    auto forward = [&] { return inner_.split(colour, key); };
    return static_cast<Derived&>(*this).intercept_split(forward);
  }

  /// The same decorator over `inner().split_shared()`, held by value.
  auto split_shared() requires inner_split_shared<inner_type>
  {
    auto forward = [&] { return inner_.split_shared(); };
    return static_cast<Derived&>(*this).intercept_split(forward);
  }

 protected:
  explicit decorator_base(Inner inner) : inner_(std::forward<Inner>(inner)) {}

 private:
  template <class Forward>
  void run(const verb_call& call, Forward&& forward)
  {
    static_cast<Derived&>(*this).intercept(call, forward);
  }

  Inner inner_;
};

}  // namespace terse::detail

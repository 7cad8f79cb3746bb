#pragma once
/// @file
/// `check_*<P>()`: each static_asserts one requirement of a policy concept
/// (concepts.hpp) at a time, so a wrong policy fails to compile with a
/// sentence that says what to add. The collectives call them on their
/// policies.

#include <terse/core/concepts.hpp>

namespace terse::concepts {

template <class C>
consteval bool check_compressor()
{
  static_assert(compressor_declares_aggregation<C>,
                "terse compressor: add `static constexpr terse::aggregation aggregation_kind = ...;` "
                "saying whether payloads are summable, requantizable or gather_only");
  static_assert(compressor_bounds_its_size<C>,
                "terse compressor: add `std::size_t max_encoded_bytes(std::size_t n) const` bounding the "
                "payload for n values");
  static_assert(compressor_encodes<C>,
                "terse compressor: add `std::size_t encode(const codec_context&, host_span<const float> in, "
                "host_span<std::byte> out)` returning the bytes written");
  static_assert(compressor_decodes<C>,
                "terse compressor: add `void decode_add(const codec_context&, host_span<const std::byte> payload, "
                "host_span<float> accumulator)` that validates and adds the decoded values");
  return compressor<C>;
}

template <class F>
consteval bool check_feedback()
{
  static_assert(feedback_compensates<F>,
                "terse feedback: add `host_span<const float> compensate(bucket_id, host_span<const float> gradient)` "
                "returning the values to compress (the gradient plus the held-back error) without changing state");
  static_assert(feedback_commits<F>,
                "terse feedback: add `void commit(bucket_id, host_span<const float> compensated, "
                "host_span<const float> decoded)` keeping what compression lost");
  return feedback<F>;
}

template <class T, memory_space Space = memory_space::host>
consteval bool check_collective_transport()
{
  static_assert(transport_knows_its_rank<T>, "terse transport: add `int rank() const` and `int size() const`");
  static_assert(collective_transport<T, Space>,
                "terse transport: this collective needs allreduce, reduce_scatter, allgather, allgatherv, "
                "broadcast and barrier on spans in this memory space; a transport with only the grouped exchange "
                "(start_exchange, test, wait) suits gossip, not allreduce");
  return collective_transport<T, Space>;
}

template <class T, memory_space Space = memory_space::host>
consteval bool check_exchanging_transport()
{
  static_assert(exchanging_transport<T, Space>,
                "terse transport: the collectives post their phases as grouped nonblocking exchanges: add "
                "`exchange_id start_exchange(host_span<const outgoing<>>, host_span<const incoming<>>, int tag)`, "
                "`bool test(exchange_id)` and `void wait(exchange_id)` (see terse/core/exchange.hpp)");
  return exchanging_transport<T, Space>;
}

template <class T>
consteval bool check_splittable_transport()
{
  static_assert(transport_knows_its_rank<T>, "terse transport: add `int rank() const` and `int size() const`");
  static_assert(
      requires(T & t, int colour, int key) { t.split(colour, key); },
      "terse transport: this collective builds sub-groups: add `Sub split(int colour, int key)` (collective; "
      "ranks of one colour >= 0 form a transport ranked by (key, rank), a negative colour gives a "
      "transport of this rank alone)");
  static_assert(
      requires(T & t) { t.split_shared(); },
      "terse transport: add `Sub split_shared()` (collective) returning a transport over the ranks that "
      "share this rank's host");
  static_assert(splittable_transport<T>,
                "terse transport: split(colour, key) and split_shared() must return a transport (rank(), size() "
                "and collective or point-to-point verbs)");
  return splittable_transport<T>;
}

template <class S>
consteval bool check_schedule()
{
  static_assert(schedule_decides_gradients<S> || schedule_observes_gradients<S>,
                "terse schedule: add `sync_action on_gradients(const step_context&)` deciding what to do after "
                "the backward pass (or `on_gradients(ctx, host_span<float> gradients, Averager&)`)");
  static_assert(schedule_decides_parameters<S> || schedule_drives_parameters<S>,
                "terse schedule: add `sync_action on_parameters(const step_context&)` deciding what to do after "
                "the optimizer step (or `on_parameters(ctx, host_span<float> parameters, Averager&)`)");
  return schedule<S>;
}

}  // namespace terse::concepts

#pragma once
/// @file
/// The four policy concepts: compressor, feedback, transport (with its
/// capability sub-concepts) and schedule. Each is a conjunction of small,
/// named requirements; `check_*<P>()` (concept_checks.hpp) turns a failed
/// requirement into a sentence that says what to add.
///
/// They live in `terse::concepts` because the policies themselves live in
/// `terse::compress`, `terse::feedback` and `terse::schedule`.

#include <terse/core/exchange.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/verbs.hpp>

#include <concepts>
#include <cstddef>
#include <type_traits>

namespace terse::concepts {

// --- compressor --------------------------------------------------------------

template <class C>
concept compressor_declares_aggregation = requires
{
  {
    C::aggregation_kind
    } -> std::convertible_to<aggregation>;
};

template <class C>
concept compressor_bounds_its_size = requires(const C& c, std::size_t n)
{
  {
    c.max_encoded_bytes(n)
    } -> std::same_as<std::size_t>;
};

template <class C>
concept compressor_encodes = requires(C& c, const codec_context& ctx, host_span<const float> in,
                                      host_span<std::byte> out)
{
  {
    c.encode(ctx, in, out)
    } -> std::same_as<std::size_t>;
};

template <class C>
concept compressor_decodes = requires(C& c, const codec_context& ctx, host_span<const std::byte> payload,
                                      host_span<float> accumulator)
{
  c.decode_add(ctx, payload, accumulator);
};

/// Optional: `decode(ctx, payload, out)` validates the payload, then
/// overwrites `out` with the decoded values bit for bit (a −0 stays −0,
/// which zero-then-decode_add turns into +0). compress::decode uses it when
/// present and falls back to zero-then-decode_add otherwise.
template <class C>
concept compressor_decodes_into = requires(C& c, const codec_context& ctx, host_span<const std::byte> payload,
                                           host_span<float> out)
{
  c.decode(ctx, payload, out);
};

/// Turns a float buffer into wire bytes and back.
/// - `static constexpr terse::aggregation aggregation_kind`: how payloads combine
/// - `max_encoded_bytes(n)`: an upper bound on the payload for n values
/// - `encode(ctx, in, out) -> bytes written`
/// - `decode_add(ctx, payload, acc)`: validates the payload, then acc += decode
template <class C>
concept compressor = compressor_declares_aggregation<C> && compressor_bounds_its_size<C> && compressor_encodes<C> &&
    compressor_decodes<C>;

/// A summable compressor also codes to typed values that a transport adds
/// up elementwise (with fp32 accumulation for 16-bit types):
/// - `using wire_type`: a reducible element type (float, fp16, bf16)
/// - `wire_count(n)`: values on the wire for n inputs
/// - `encode_values(ctx, in, wire)`; `decode_values(ctx, wire, out)`
///   (decode overwrites `out`)
template <class C>
concept summable_compressor = compressor<C> && C::aggregation_kind ==
                              aggregation::summable&& reducible<typename C::wire_type>&& requires(
                                  C& c, const codec_context& ctx, host_span<const float> in,
                                  host_span<typename C::wire_type> wire,
                                  host_span<const typename C::wire_type> received, host_span<float> out, std::size_t n)
{
  {
    c.wire_count(n)
    } -> std::same_as<std::size_t>;
  c.encode_values(ctx, in, wire);
  c.decode_values(ctx, received, out);
};

/// A compressor that runs its own reduction over a transport (PowerSGD's
/// two factor allreduces): `reduce(ctx, transport, values)` averages
/// `values` in place across ranks.
template <class C, class Transport>
concept self_reducing_compressor = requires(C& c, const codec_context& ctx, Transport& t, host_span<float> values)
{
  c.reduce(ctx, t, values);
};

/// Optional for a self-reducing codec: its reduction in three parts with
/// the averages left to the caller (compress::powersgd), so the collective
/// runs them as its own exchanges, overlapped with the rest of the step.
/// `reduce_first(ctx, values)` returns the span every rank averages in
/// place first (empty: nothing to exchange); `reduce_second(ctx, values)`
/// the span averaged next (empty: none); `reduce_last(ctx, values)` writes
/// the result into `values`.
template <class C>
concept staged_reducing_compressor = requires(C& c, const codec_context& ctx, host_span<const float> in,
                                              host_span<float> values)
{
  {
    c.reduce_first(ctx, in)
    } -> std::same_as<host_span<float>>;
  {
    c.reduce_second(ctx, in)
    } -> std::same_as<host_span<float>>;
  c.reduce_last(ctx, values);
};

/// Optional fusion with residual error feedback, one pass over memory:
/// `encode_residual(ctx, g, e_old, e_new, out)` codes p = g + e_old into
/// `out` and writes e_new = p - decode(p). It changes no state (e_new is a
/// staging buffer the feedback commits once the exchange succeeded).
template <class C>
concept residual_fusing_compressor = requires(C& c, const codec_context& ctx, host_span<const float> g,
                                              host_span<const float> e_old, host_span<float> e_new,
                                              host_span<std::byte> out)
{
  {
    c.encode_residual(ctx, g, e_old, e_new, out)
    } -> std::same_as<std::size_t>;
};

/// Optional: a codec whose payload for n values is always exactly
/// `max_encoded_bytes(n)` bytes declares `static constexpr bool
/// fixed_encoded_size = true` (top-k). A receiver then knows every payload's
/// size before it arrives, so the sparse reduce-scatter of gather-only codecs
/// sends no size announcements (two round trips instead of four).
template <class C>
concept fixed_size_compressor = compressor<C> && requires
{
  requires C::fixed_encoded_size;
};

// --- feedback ----------------------------------------------------------------

template <class F>
concept feedback_compensates = requires(F& f, bucket_id id, host_span<const float> gradient)
{
  {
    f.compensate(id, gradient)
    } -> std::convertible_to<host_span<const float>>;
};

template <class F>
concept feedback_commits = requires(F& f, bucket_id id, host_span<const float> compensated,
                                    host_span<const float> decoded)
{
  f.commit(id, compensated, decoded);
};

/// An error-feedback rule with per-bucket state, used transactionally so a
/// failed or non-finite step leaves the state as it was:
/// - `compensate(bucket, g) -> span`: the values to compress (g plus what was
///   held back before), without changing the state
/// - `commit(bucket, compensated, decoded)`: once every rank has exchanged
///   its payload, keep what compression lost
template <class F>
concept feedback = feedback_compensates<F> && feedback_commits<F>;

// --- transport -----------------------------------------------------------------

template <class T>
concept transport_knows_its_rank = requires(const T& t)
{
  {
    t.rank()
    } -> std::convertible_to<int>;
  {
    t.size()
    } -> std::convertible_to<int>;
};

/// True unless the transport declares (`template <memory_space S> static
/// constexpr bool accepts_memory`) that it does not take buffers in `Space`.
/// Verbs reject a wrong space with a readable static_assert inside their
/// bodies, which a requires-expression cannot see; the declaration lets the
/// capability concepts below answer correctly anyway.
template <class T, memory_space Space>
concept transport_accepts_memory = !requires
{
  {
    std::remove_cvref_t<T>::template accepts_memory<Space>
    } -> std::convertible_to<bool>;
}
|| std::remove_cvref_t<T>::template accepts_memory<Space>;

/// Collective verbs on buffers in `Space` (float checked as representative).
template <class T, memory_space Space = memory_space::host>
concept collective_transport = transport_knows_its_rank<T> && transport_accepts_memory<T, Space> &&
    requires(T& t, span<const float, Space> in, span<float, Space> out, host_span<const std::size_t> counts)
{
  t.allreduce(in, out, reduce_op::sum);
  t.reduce_scatter(in, out, reduce_op::sum);
  t.allgather(in, out);
  t.allgatherv(in, out, counts);
  t.broadcast(out, 0);
  t.barrier();
};

/// Point-to-point verbs on buffers in `Space`: enough for gossip.
template <class T, memory_space Space = memory_space::host>
concept point_to_point_transport = transport_knows_its_rank<T> && transport_accepts_memory<T, Space> &&
    requires(T& t, span<const float, Space> in, span<float, Space> out)
{
  t.send(in, 0, 0);
  t.recv(out, 0, 0);
};

/// A grouped, nonblocking point-to-point exchange on byte buffers in
/// `Space` (core/exchange.hpp): `start_exchange(sends, recvs, tag) ->
/// exchange_id`, `test(id) -> bool`, `wait(id)`. The collectives build their
/// phases from it, so every bucket's exchange can be in flight at once.
template <class T, memory_space Space = memory_space::host>
concept exchanging_transport = transport_knows_its_rank<T> && transport_accepts_memory<T, Space> &&
    requires(T& t, host_span<const outgoing<Space>> sends, host_span<const incoming<Space>> recvs, exchange_id id)
{
  {
    t.start_exchange(sends, recvs, 0)
    } -> std::same_as<exchange_id>;
  {
    t.test(id)
    } -> std::same_as<bool>;
  t.wait(id);
};

/// A transport: knows its rank and world size and has collective verbs,
/// point-to-point verbs, or both, in host or device memory.
template <class T>
concept transport = transport_knows_its_rank<T> &&
    (collective_transport<T, memory_space::host> || collective_transport<T, memory_space::device> ||
     point_to_point_transport<T, memory_space::host> || point_to_point_transport<T, memory_space::device>);

/// Sub-transports, like MPI_Comm_split: `split(colour, key)` (ranks of one
/// colour >= 0 form a sub-transport ranked by (key, rank); a negative
/// colour gives a transport of the rank alone) and `split_shared()` (the
/// ranks that share a host), each collective and returning a transport.
/// A hierarchical collective splits into intra-host and inter-host groups.
template <class T>
concept splittable_transport = transport<T> && requires(T& t, int colour, int key)
{
  {
    t.split(colour, key)
    } -> transport;
  {
    t.split_shared()
    } -> transport;
};

// --- schedule ------------------------------------------------------------------

/// What a collective offers a schedule that drives the exchange itself (the
/// collective is one): a compressed average of a layout-sized buffer with
/// the collective's compressor and feedback, a small uncompressed allreduce
/// for monitoring state (FDA's estimates, event checks; metered like any
/// verb), and the rank and world size. Every rank must take the same
/// decisions, so decisions rest on values every rank holds (monitored ones).
struct averager_archetype {
  void average(host_span<float> values);
  void monitor(host_span<double> values, reduce_op op);
  int rank() const;
  int size() const;
};

template <class S>
concept schedule_decides_gradients = requires(S& s, const step_context& ctx)
{
  {
    s.on_gradients(ctx)
    } -> std::same_as<sync_action>;
};

template <class S>
concept schedule_decides_parameters = requires(S& s, const step_context& ctx)
{
  {
    s.on_parameters(ctx)
    } -> std::same_as<sync_action>;
};

/// A schedule that sees the gradients (an event trigger on their norm) and
/// may average them itself through `averager`.
template <class S, class Averager = averager_archetype>
concept schedule_observes_gradients = requires(S& s, const step_context& ctx, host_span<float> gradients,
                                               Averager& averager)
{
  {
    s.on_gradients(ctx, gradients, averager)
    } -> std::same_as<sync_action>;
};

/// A schedule that drives the parameter exchange itself (FDA, SlowMo,
/// BMUF, adaptive intervals): it decides from monitored values, averages
/// through `averager` (the model or a delta) and may change the parameters
/// after (an outer momentum step).
template <class S, class Averager = averager_archetype>
concept schedule_drives_parameters = requires(S& s, const step_context& ctx, host_span<float> parameters,
                                              Averager& averager)
{
  {
    s.on_parameters(ctx, parameters, averager)
    } -> std::same_as<sync_action>;
};

/// Decides at each hook whether to communicate: after the backward pass
/// (gradients) and after the optimizer step (parameters). Either answer
/// with a sync_action from the step alone, or drive the exchange with the
/// buffer and an averager.
template <class S>
concept schedule = (schedule_decides_gradients<S> || schedule_observes_gradients<S>)&&(schedule_decides_parameters<S> ||
                                                                                       schedule_drives_parameters<S>);

}  // namespace terse::concepts

#include <terse/core/concept_checks.hpp>
#include <terse/core/concepts.hpp>

#include <doctest/doctest.h>

#include <cstring>

// Model types: the least a policy must provide. Negative cases miss one
// member each, so every named requirement is shown to be load-bearing.
namespace model {

struct copy_codec {
  static constexpr terse::aggregation aggregation_kind = terse::aggregation::summable;
  std::size_t max_encoded_bytes(std::size_t n) const { return 4 * n; }
  std::size_t encode(const terse::codec_context&, terse::host_span<const float> in, terse::host_span<std::byte> out)
  {
    std::memcpy(out.data(), in.data(), in.size_bytes());
    return in.size_bytes();
  }
  void decode_add(const terse::codec_context&, terse::host_span<const std::byte> payload, terse::host_span<float> acc)
  {
    for (std::size_t i = 0; i < acc.size(); ++i) {
      float v;
      std::memcpy(&v, payload.data() + 4 * i, 4);
      acc[i] += v;
    }
  }
};

struct codec_without_aggregation {
  std::size_t max_encoded_bytes(std::size_t n) const { return n; }
  std::size_t encode(const terse::codec_context&, terse::host_span<const float>, terse::host_span<std::byte>)
  {
    return 0;
  }
  void decode_add(const terse::codec_context&, terse::host_span<const std::byte>, terse::host_span<float>) {}
};

struct codec_without_decode {
  static constexpr terse::aggregation aggregation_kind = terse::aggregation::gather_only;
  std::size_t max_encoded_bytes(std::size_t n) const { return n; }
  std::size_t encode(const terse::codec_context&, terse::host_span<const float>, terse::host_span<std::byte>)
  {
    return 0;
  }
};

struct codec_encode_returns_void {
  static constexpr terse::aggregation aggregation_kind = terse::aggregation::gather_only;
  std::size_t max_encoded_bytes(std::size_t n) const { return n; }
  void encode(const terse::codec_context&, terse::host_span<const float>, terse::host_span<std::byte>) {}
  void decode_add(const terse::codec_context&, terse::host_span<const std::byte>, terse::host_span<float>) {}
};

struct no_feedback {
  terse::host_span<const float> compensate(terse::bucket_id, terse::host_span<const float> g) { return g; }
  void commit(terse::bucket_id, terse::host_span<const float>, terse::host_span<const float>) {}
};
struct feedback_without_commit {
  terse::host_span<const float> compensate(terse::bucket_id, terse::host_span<const float> g) { return g; }
};
struct feedback_compensating_in_place {  // the old, non-transactional shape
  void compensate(terse::bucket_id, terse::host_span<float>) {}
  void commit(terse::bucket_id, terse::host_span<const float>, terse::host_span<const float>) {}
};

// A transport with every collective verb on host memory.
struct collective_only {
  int rank() const { return 0; }
  int size() const { return 1; }
  template <class T>
  void allreduce(terse::host_span<const T>, terse::host_span<T>, terse::reduce_op)
  {
  }
  template <class T>
  void reduce_scatter(terse::host_span<const T>, terse::host_span<T>, terse::reduce_op)
  {
  }
  template <class T>
  void allgather(terse::host_span<const T>, terse::host_span<T>)
  {
  }
  template <class T>
  void allgatherv(terse::host_span<const T>, terse::host_span<T>, terse::host_span<const std::size_t>)
  {
  }
  template <class T>
  void broadcast(terse::host_span<T>, int)
  {
  }
  void barrier() {}
};

// Gossip needs only send and recv: still a transport, not a collective one.
struct send_recv_only {
  int rank() const { return 0; }
  int size() const { return 2; }
  template <class T>
  void send(terse::host_span<const T>, int, int)
  {
  }
  template <class T>
  void recv(terse::host_span<T>, int, int)
  {
  }
};

// Device-only collectives (the shape of an NCCL transport).
struct device_collectives {
  int rank() const { return 0; }
  int size() const { return 1; }
  template <class T>
  void allreduce(terse::device_span<const T>, terse::device_span<T>, terse::reduce_op)
  {
  }
  template <class T>
  void reduce_scatter(terse::device_span<const T>, terse::device_span<T>, terse::reduce_op)
  {
  }
  template <class T>
  void allgather(terse::device_span<const T>, terse::device_span<T>)
  {
  }
  template <class T>
  void allgatherv(terse::device_span<const T>, terse::device_span<T>, terse::host_span<const std::size_t>)
  {
  }
  template <class T>
  void broadcast(terse::device_span<T>, int)
  {
  }
  void barrier() {}
};

struct rankless {
  void barrier() {}
};

struct every_step_model {
  terse::sync_action on_gradients(const terse::step_context&) { return terse::sync_action::average; }
  terse::sync_action on_parameters(const terse::step_context&) { return terse::sync_action::skip; }
};
struct schedule_returning_bool {
  bool on_gradients(const terse::step_context&) { return true; }
  terse::sync_action on_parameters(const terse::step_context&) { return terse::sync_action::skip; }
};

}  // namespace model

TEST_CASE("compressor concept accepts a model and names what a bad one lacks")
{
  static_assert(terse::concepts::compressor<model::copy_codec>);
  static_assert(terse::concepts::check_compressor<model::copy_codec>());
  static_assert(!terse::concepts::compressor<model::codec_without_aggregation>);
  static_assert(!terse::concepts::compressor_declares_aggregation<model::codec_without_aggregation>);
  static_assert(!terse::concepts::compressor<model::codec_without_decode>);
  static_assert(!terse::concepts::compressor_decodes<model::codec_without_decode>);
  static_assert(!terse::concepts::compressor<model::codec_encode_returns_void>);
  static_assert(!terse::concepts::compressor_encodes<model::codec_encode_returns_void>);
  static_assert(!terse::concepts::compressor<int>);
  CHECK(true);
}

TEST_CASE("feedback concept")
{
  static_assert(terse::concepts::feedback<model::no_feedback>);
  static_assert(!terse::concepts::feedback<model::feedback_without_commit>);
  static_assert(!terse::concepts::feedback<model::feedback_compensating_in_place>);
  static_assert(!terse::concepts::feedback<model::copy_codec>);
  CHECK(true);
}

TEST_CASE("transport concept and its capability sub-concepts")
{
  static_assert(terse::concepts::transport<model::collective_only>);
  static_assert(terse::concepts::collective_transport<model::collective_only>);
  static_assert(!terse::concepts::point_to_point_transport<model::collective_only>);

  static_assert(terse::concepts::transport<model::send_recv_only>);
  static_assert(terse::concepts::point_to_point_transport<model::send_recv_only>);
  static_assert(!terse::concepts::collective_transport<model::send_recv_only>);

  static_assert(terse::concepts::transport<model::device_collectives>);
  static_assert(terse::concepts::collective_transport<model::device_collectives, terse::memory_space::device>);
  static_assert(!terse::concepts::collective_transport<model::device_collectives, terse::memory_space::host>);

  static_assert(!terse::concepts::transport<model::rankless>);
  static_assert(!terse::concepts::transport<int>);
  CHECK(true);
}

TEST_CASE("schedule concept")
{
  static_assert(terse::concepts::schedule<model::every_step_model>);
  static_assert(!terse::concepts::schedule<model::schedule_returning_bool>);
  static_assert(!terse::concepts::schedule<model::no_feedback>);
  CHECK(true);
}

namespace model {
// Declares its memory: the capability concepts believe the declaration even
// though the verb templates would accept any span.
struct host_declared : collective_only {
  template <terse::memory_space S>
  static constexpr bool accepts_memory = S == terse::memory_space::host;
};
struct any_span_collectives : collective_only {
  template <class T, terse::memory_space S>
  void allreduce(terse::span<const T, S>, terse::span<T, S>, terse::reduce_op)
  {
  }
};
}  // namespace model

TEST_CASE("a transport's declared memory spaces decide its capabilities")
{
  static_assert(terse::concepts::collective_transport<model::host_declared, terse::memory_space::host>);
  static_assert(terse::concepts::transport_accepts_memory<model::host_declared, terse::memory_space::host>);
  static_assert(!terse::concepts::transport_accepts_memory<model::host_declared, terse::memory_space::device>);
  static_assert(!terse::concepts::collective_transport<model::host_declared, terse::memory_space::device>);
  // no declaration: accepted unless the verbs themselves say otherwise
  static_assert(terse::concepts::transport_accepts_memory<model::collective_only, terse::memory_space::device>);
  CHECK(true);
}

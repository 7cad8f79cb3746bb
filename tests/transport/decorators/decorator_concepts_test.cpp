// The decorators have exactly the verbs of what they wrap, hold it by value
// or by reference, stack, and pass trailing arguments (a stream) through.
#include <terse/core/concept_checks.hpp>
#include <terse/core/concepts.hpp>
#include <terse/transport/faulty.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <doctest/doctest.h>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace model {

// Collectives on host memory only.
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

// Gossip needs only send and recv.
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

struct fake_stream {
  int id = 0;
};

// Device collectives taking a stream, the shape of an NCCL transport. It
// records what reached it; it never touches the (fake) device memory.
struct device_recorder {
  int rank() const { return 0; }
  int size() const { return 1; }
  std::vector<std::string> calls;
  int last_stream = -1;

  template <class T>
  void allreduce(terse::device_span<const T>, terse::device_span<T>, terse::reduce_op, fake_stream s)
  {
    record("allreduce", s);
  }
  template <class T>
  void allreduce(terse::device_span<T>, terse::reduce_op, fake_stream s)
  {
    record("allreduce in place", s);
  }
  template <class T>
  void reduce_scatter(terse::device_span<const T>, terse::device_span<T>, terse::reduce_op, fake_stream s)
  {
    record("reduce_scatter", s);
  }
  template <class T>
  void allgather(terse::device_span<const T>, terse::device_span<T>, fake_stream s)
  {
    record("allgather", s);
  }
  template <class T>
  void allgatherv(terse::device_span<const T>, terse::device_span<T>, terse::host_span<const std::size_t>,
                  fake_stream s)
  {
    record("allgatherv", s);
  }
  template <class T>
  void broadcast(terse::device_span<T>, int, fake_stream s)
  {
    record("broadcast", s);
  }
  void barrier(fake_stream s) { record("barrier", s); }

 private:
  void record(const char* what, fake_stream s)
  {
    calls.emplace_back(what);
    last_stream = s.id;
  }
};

// Has sendrecv; a decorator over send_recv_only must not invent one.
struct exchanger : send_recv_only {
  template <class T>
  void sendrecv(terse::host_span<const T>, int, terse::host_span<T>, int, int)
  {
  }
};

}  // namespace model

namespace {
using terse::memory_space;
using terse::concepts::collective_transport;
using terse::concepts::point_to_point_transport;
using terse::concepts::transport;

template <class T>
concept has_sendrecv = requires(T& t, terse::host_span<const float> in, terse::host_span<float> out)
{
  t.sendrecv(in, 0, out, 0, 0);
};
template <class T>
concept has_abort = requires(T& t)
{
  t.abort("reason");
};
template <class T>
concept has_health_and_options = requires(const T& t)
{
  {
    t.healthy()
    } -> std::convertible_to<bool>;
  t.options().timeout;
};

template <template <class> class Decorator>
constexpr bool capabilities_propagate()
{
  static_assert(collective_transport<Decorator<model::collective_only>>);
  static_assert(!point_to_point_transport<Decorator<model::collective_only>>);
  static_assert(transport<Decorator<model::collective_only>>);

  static_assert(point_to_point_transport<Decorator<model::send_recv_only>>);
  static_assert(!collective_transport<Decorator<model::send_recv_only>>);
  static_assert(transport<Decorator<model::send_recv_only>>);
  static_assert(!has_sendrecv<Decorator<model::send_recv_only>>);
  static_assert(has_sendrecv<Decorator<model::exchanger>>);
  static_assert(!has_abort<Decorator<model::send_recv_only>>);

  static_assert(!collective_transport<Decorator<model::device_recorder>, memory_space::host>);

  static_assert(collective_transport<Decorator<terse::local_transport>>);
  static_assert(point_to_point_transport<Decorator<terse::local_transport&>>);
  static_assert(has_sendrecv<Decorator<terse::local_transport&>>);
  static_assert(has_abort<Decorator<terse::local_transport&>>);
  static_assert(has_health_and_options<Decorator<terse::local_transport&>>);
  static_assert(
      std::is_same_v<decltype(std::declval<Decorator<terse::local_transport&>&>().inner()), terse::local_transport&>);
  static_assert(std::is_move_constructible_v<Decorator<terse::local_transport>>);
  static_assert(!std::is_copy_constructible_v<Decorator<terse::local_transport&>>);
  return true;
}

// A decorator with the default arguments filled in, for the template above.
template <class Inner>
using metered_t = terse::metered<Inner>;
template <class Inner>
using simulated_t = terse::simulated_network<Inner>;
template <class Inner>
using faulty_t = terse::faulty<Inner>;

}  // namespace

TEST_CASE("each decorator has exactly the capabilities of its inner transport")
{
  static_assert(capabilities_propagate<metered_t>());
  static_assert(capabilities_propagate<simulated_t>());
  static_assert(capabilities_propagate<faulty_t>());
  CHECK(true);
}

TEST_CASE("stacked decorators keep the capabilities")
{
  using stack = terse::faulty<terse::simulated_network<terse::metered<terse::local_transport&>>>;
  static_assert(collective_transport<stack>);
  static_assert(point_to_point_transport<stack>);
  static_assert(has_sendrecv<stack>);
  static_assert(has_abort<stack>);
  static_assert(terse::concepts::check_collective_transport<stack>());

  using gossip_stack = terse::simulated_network<terse::metered<model::send_recv_only>>;
  static_assert(point_to_point_transport<gossip_stack>);
  static_assert(!collective_transport<gossip_stack>);
  CHECK(true);
}

TEST_CASE("construction from an lvalue holds a reference, from an rvalue the value")
{
  terse::run_local(2, [](terse::local_transport& t) {
    terse::metered by_reference(t);
    static_assert(std::is_same_v<decltype(by_reference), terse::metered<terse::local_transport&>>);
    terse::simulated_network net(t, terse::network_model::gbps(10));
    static_assert(std::is_same_v<decltype(net), terse::simulated_network<terse::local_transport&>>);
    terse::faulty harmless(net);
    static_assert(
        std::is_same_v<decltype(harmless), terse::faulty<terse::simulated_network<terse::local_transport&>&>>);
    CHECK(&by_reference.inner() == &t);
    CHECK(&harmless.inner().inner() == &t);

    terse::local_world world(1);
    terse::metered owning(world.transport(0));
    static_assert(std::is_same_v<decltype(owning), terse::metered<terse::local_transport>>);
    terse::metered moved(std::move(owning));
    CHECK(moved.rank() == 0);
    CHECK(moved.size() == 1);

    CHECK(by_reference.rank() == t.rank());
    CHECK(by_reference.size() == 2);
    CHECK(by_reference.options().timeout == t.options().timeout);
    CHECK(by_reference.healthy());
    std::vector<float> v{1.0f};
    harmless.allreduce(terse::host_span<float>(v), terse::reduce_op::sum);
    CHECK(v[0] == 2.0f);
  });
}

TEST_CASE("device spans and trailing stream arguments pass through untouched")
{
  static_assert(collective_transport<model::device_recorder, memory_space::device> ==
                collective_transport<terse::metered<model::device_recorder>, memory_space::device>);

  terse::metered<model::device_recorder> m{model::device_recorder{}};
  std::vector<float> storage(8);  // never dereferenced: the spans only carry a pointer and a size
  const auto buffer = terse::on_device(storage.data(), storage.size());
  const std::vector<std::size_t> counts{8};
  m.allreduce(terse::device_span<const float>(buffer), buffer, terse::reduce_op::sum, model::fake_stream{7});
  m.allreduce(buffer, terse::reduce_op::sum, model::fake_stream{8});
  m.reduce_scatter(terse::device_span<const float>(buffer), buffer, terse::reduce_op::max, model::fake_stream{9});
  m.allgather(terse::device_span<const float>(buffer), buffer, model::fake_stream{10});
  m.allgatherv(terse::device_span<const float>(buffer), buffer, terse::host_span<const std::size_t>(counts),
               model::fake_stream{11});
  m.broadcast(buffer, 0, model::fake_stream{12});
  m.barrier(model::fake_stream{13});

  const std::vector<std::string> expected{"allreduce",  "allreduce in place", "reduce_scatter", "allgather",
                                          "allgatherv", "broadcast",          "barrier"};
  CHECK(m.inner().calls == expected);
  CHECK(m.inner().last_stream == 13);
  CHECK(m.counts(terse::verb::allreduce).calls == 2);
  CHECK(m.counts().total().calls == 7);
  CHECK(m.counts().total().bytes_sent == 0);  // a world of one moves nothing
}

TEST_CASE("kill on a transport without abort still throws and stays dead")
{
  static_assert(!has_abort<terse::faulty<model::send_recv_only>>);
  terse::faulty<model::send_recv_only> f(model::send_recv_only{},
                                         terse::fault_plan{.rank = 0, .at_call = 1, .kind = terse::fault_kind::kill});
  std::vector<float> v(4);
  f.send(terse::host_span<const float>(v), 1, 0);
  CHECK(f.healthy());
  CHECK_THROWS_AS(f.send(terse::host_span<const float>(v), 1, 0), terse::error);
  CHECK_FALSE(f.healthy());
  CHECK_THROWS_AS(f.recv(terse::host_span<float>(v), 1, 0), terse::error);
  CHECK(f.calls() == 3);
  CHECK(f.fired());
}

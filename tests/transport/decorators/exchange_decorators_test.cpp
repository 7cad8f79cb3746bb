// Grouped exchanges through the decorators: metered counts the bytes to and
// from other ranks, simulated_network charges alpha + the longer direction
// (uniform and per-link), follows_model holds test() until the modelled
// time and serialises exchanges on the link, faulty counts start_exchange
// as a call.
#include <terse/core/concepts.hpp>
#include <terse/transport/faulty.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <vector>

namespace {
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using terse::host_span;
using terse::verb;
using sends_span = host_span<const terse::outgoing<>>;
using recvs_span = host_span<const terse::incoming<>>;

static_assert(terse::concepts::exchanging_transport<terse::metered<terse::local_transport&>>);
static_assert(terse::concepts::exchanging_transport<terse::simulated_network<terse::local_transport>>);
static_assert(terse::concepts::exchanging_transport<
              terse::faulty<terse::simulated_network<terse::metered<terse::local_transport&>>>>);

// No exchange in the inner transport, none in the decorator.
struct send_recv_only {
  int rank() const { return 0; }
  int size() const { return 2; }
  template <class T>
  void send(host_span<const T>, int, int)
  {
  }
  template <class T>
  void recv(host_span<T>, int, int)
  {
  }
};
static_assert(!terse::concepts::exchanging_transport<terse::metered<send_recv_only>>);
static_assert(!terse::concepts::exchanging_transport<terse::simulated_network<send_recv_only>>);
static_assert(!terse::concepts::exchanging_transport<terse::faulty<send_recv_only>>);

std::size_t pair_size(int from, int to)
{
  return static_cast<std::size_t>(100 * (from + 1) + 10 * to);
}

// The buffers of an all-to-all of pair_size bytes, this rank included.
struct all_to_all {
  std::vector<std::vector<std::byte>> out, in;
  std::vector<terse::outgoing<>> sends;
  std::vector<terse::incoming<>> recvs;

  all_to_all(int rank, int world)
  {
    for (int peer = 0; peer < world; ++peer) {
      out.emplace_back(pair_size(rank, peer), std::byte(1));
      in.emplace_back(pair_size(peer, rank));
    }
    for (int peer = 0; peer < world; ++peer) {
      const auto p = static_cast<std::size_t>(peer);
      sends.push_back({peer, host_span<const std::byte>(out[p])});
      recvs.push_back({peer, host_span<std::byte>(in[p])});
    }
  }
};

double seconds_since(clock_type::time_point start)
{
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

bool close(double got, double want)
{
  return std::abs(got - want) <= 1e-12 * std::max(std::abs(want), 1e-300);
}

}  // namespace

TEST_CASE("metered counts one send call with the bytes to and from other ranks, for 1 to 5 ranks")
{
  for (int world = 1; world <= 5; ++world) {
    CAPTURE(world);
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::metered m(t);
      all_to_all a(t.rank(), world);
      m.wait(m.start_exchange(sends_span(a.sends), recvs_span(a.recvs), 0));
      std::uint64_t sent = 0, received = 0;
      for (int peer = 0; peer < world; ++peer) {
        if (peer != t.rank()) {
          sent += pair_size(t.rank(), peer);
          received += pair_size(peer, t.rank());
        }
      }
      CHECK(m.counts(verb::send) == terse::verb_meter{.calls = 1, .bytes_sent = sent, .bytes_received = received});
      CHECK(m.counts().total() == m.counts(verb::send));
    });
  }
}

TEST_CASE("simulated_network charges alpha + max(sent / bandwidth, received / bandwidth) per exchange")
{
  const auto model = terse::network_model{.latency_s = 7e-6, .bandwidth_bytes_per_s = 3e9};
  for (int world = 1; world <= 5; ++world) {
    CAPTURE(world);
    terse::run_local(world, [&](terse::local_transport& t) {
      terse::simulated_network net(t, model);
      all_to_all a(t.rank(), world);
      net.wait(net.start_exchange(sends_span(a.sends), recvs_span(a.recvs), 0));
      double sent = 0.0, received = 0.0;
      for (int peer = 0; peer < world; ++peer) {
        if (peer != t.rank()) {
          sent += static_cast<double>(pair_size(t.rank(), peer));
          received += static_cast<double>(pair_size(peer, t.rank()));
        }
      }
      const double want = world == 1 ? 0.0 : model.latency_s + std::max(sent, received) / model.bandwidth_bytes_per_s;
      CHECK(close(net.modelled_seconds(verb::send), want));
      CHECK(close(net.modelled_seconds(), want));
    });
  }
}

TEST_CASE("simulated_network: per-link bandwidths price each message on its own link; self messages are free")
{
  constexpr int world = 3;
  // [from * W + to], bytes per second
  const terse::network_model model{.latency_s = 1e-5,
                                   .link_bandwidth_bytes_per_s = {1e9, 2e9, 3e9, 4e9, 1e9, 5e9, 6e9, 7e9, 1e9}};
  const auto bandwidth = [&](int from, int to) {
    return model.link_bandwidth_bytes_per_s[static_cast<std::size_t>(from * world + to)];
  };
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::simulated_network net(t, model);
    all_to_all a(t.rank(), world);
    net.wait(net.start_exchange(sends_span(a.sends), recvs_span(a.recvs), 0));
    double sending = 0.0, receiving = 0.0;
    for (int peer = 0; peer < world; ++peer) {
      if (peer != t.rank()) {
        sending += static_cast<double>(pair_size(t.rank(), peer)) / bandwidth(t.rank(), peer);
        receiving += static_cast<double>(pair_size(peer, t.rank())) / bandwidth(peer, t.rank());
      }
    }
    CHECK(close(net.modelled_seconds(), model.latency_s + std::max(sending, receiving)));

    net.reset();
    std::array<std::byte, 64> mine{}, back{};
    const std::array self_send{terse::outgoing<>{t.rank(), host_span<const std::byte>(mine)}};
    const std::array self_recv{terse::incoming<>{t.rank(), host_span<std::byte>(back)}};
    net.wait(net.start_exchange(sends_span(self_send), recvs_span(self_recv), 1));
    CHECK(net.modelled_seconds() == 0.0);
  });
}

TEST_CASE("follows_model: test() stays false until the modelled time has passed")
{
  const auto model = terse::network_model{.latency_s = 0.1};  // every exchange with a peer costs 100 ms
  std::vector<char> early(2, 1);
  std::vector<double> took(2, 0.0);
  terse::run_local(2, [&](terse::local_transport& t) {
    terse::simulated_network net(t, model, terse::wall_clock::follows_model);
    const std::array<std::byte, 8> mine{};
    std::array<std::byte, 8> theirs{};
    const std::array sends{terse::outgoing<>{1 - t.rank(), host_span<const std::byte>(mine)}};
    const std::array recvs{terse::incoming<>{1 - t.rank(), host_span<std::byte>(theirs)}};
    const auto start = clock_type::now();
    const terse::exchange_id id = net.start_exchange(sends_span(sends), recvs_span(recvs), 0);
    std::this_thread::sleep_for(20ms);  // the inner exchange is long done by now
    early[static_cast<std::size_t>(t.rank())] = net.test(id);
    while (!net.test(id)) {
      std::this_thread::sleep_for(1ms);
    }
    took[static_cast<std::size_t>(t.rank())] = seconds_since(start);
  });
  CHECK(early == std::vector<char>{0, 0});
  for (const double seconds : took) {
    CHECK(seconds >= 0.1);
    CHECK(seconds < 1.5);
  }
}

TEST_CASE("follows_model: exchanges and blocking verbs queue on the link")
{
  const auto model = terse::network_model{.latency_s = 0.1};
  std::vector<double> first(2), second(2), barrier(2);
  terse::run_local(2, [&](terse::local_transport& t) {
    terse::simulated_network net(t, model, terse::wall_clock::follows_model);
    const std::array<std::byte, 8> mine{};
    std::array<std::byte, 8> one{}, two{};
    const std::array sends{terse::outgoing<>{1 - t.rank(), host_span<const std::byte>(mine)}};
    const std::array recv_one{terse::incoming<>{1 - t.rank(), host_span<std::byte>(one)}};
    const std::array recv_two{terse::incoming<>{1 - t.rank(), host_span<std::byte>(two)}};
    const auto start = clock_type::now();
    const terse::exchange_id a = net.start_exchange(sends_span(sends), recvs_span(recv_one), 1);
    const terse::exchange_id b = net.start_exchange(sends_span(sends), recvs_span(recv_two), 2);
    net.wait(a);
    first[static_cast<std::size_t>(t.rank())] = seconds_since(start);
    net.wait(b);
    second[static_cast<std::size_t>(t.rank())] = seconds_since(start);
    // The barrier (ceil(log2 2) = 1 latency) begins once the link is free.
    const terse::exchange_id c = net.start_exchange(sends_span(sends), recvs_span(recv_one), 3);
    net.barrier();
    barrier[static_cast<std::size_t>(t.rank())] = seconds_since(start);
    net.wait(c);
    CHECK(net.modelled_seconds() == doctest::Approx(0.4));
  });
  for (std::size_t r = 0; r < 2; ++r) {
    CHECK(first[r] >= 0.1);
    CHECK(second[r] >= 0.2);  // two costs after the first start, not one
    CHECK(second[r] < 1.5);
    CHECK(barrier[r] >= 0.4);
    CHECK(barrier[r] < 2.5);
  }
}

TEST_CASE("faulty counts start_exchange as a call, not test or wait")
{
  terse::run_local(1, [](terse::local_transport& t) {
    terse::faulty f(t, terse::fault_plan{.rank = 0, .at_call = 1, .kind = terse::fault_kind::fail});
    std::array<std::byte, 4> mine{}, back{};
    const std::array sends{terse::outgoing<>{0, host_span<const std::byte>(mine)}};
    const std::array recvs{terse::incoming<>{0, host_span<std::byte>(back)}};
    const terse::exchange_id id = f.start_exchange(sends_span(sends), recvs_span(recvs), 0);
    CHECK(f.test(id));
    CHECK(f.calls() == 1);
    CHECK_THROWS_AS(f.start_exchange(sends_span(sends), recvs_span(recvs), 0), terse::error);
    CHECK(f.fired());
    CHECK(f.calls() == 2);
    f.wait(f.start_exchange(sends_span(sends), recvs_span(recvs), 0));  // later calls go through
  });
}

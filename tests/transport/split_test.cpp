// Sub-transports (split) over threads: who lands where, exact verbs on the
// sub-transports next to concurrent traffic on the parent and the siblings,
// failure that crosses from a sub-world to its parent and back (promptly,
// never by waiting out the timeout), nested splits, and the decorators'
// splits (fresh counters, a restricted network model, the fault plan).
// (Over 400 lines: one file so the cases share their small world helpers.)
#include <terse/core/concept_checks.hpp>
#include <terse/core/concepts.hpp>
#include <terse/transport/faulty.hpp>
#include <terse/transport/local.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using terse::host_span;
using terse::local_transport;
using sends_span = host_span<const terse::outgoing<>>;
using recvs_span = host_span<const terse::incoming<>>;

// A transport with every verb but no split.
struct unsplittable {
  int rank() const { return 0; }
  int size() const { return 1; }
  template <class T, terse::memory_space S>
  void allreduce(terse::span<const T, S>, terse::span<T, S>, terse::reduce_op)
  {
  }
  template <class T, terse::memory_space S>
  void reduce_scatter(terse::span<const T, S>, terse::span<T, S>, terse::reduce_op)
  {
  }
  template <class T, terse::memory_space S>
  void allgather(terse::span<const T, S>, terse::span<T, S>)
  {
  }
  template <class T, terse::memory_space S>
  void allgatherv(terse::span<const T, S>, terse::span<T, S>, host_span<const std::size_t>)
  {
  }
  template <class T, terse::memory_space S>
  void broadcast(terse::span<T, S>, int)
  {
  }
  void barrier() {}
};

static_assert(terse::concepts::splittable_transport<local_transport>);
static_assert(terse::concepts::check_splittable_transport<local_transport>());
static_assert(std::is_same_v<decltype(std::declval<local_transport&>().split(0, 0)), local_transport>);
static_assert(terse::concepts::transport<unsplittable>);
static_assert(!terse::concepts::splittable_transport<unsplittable>);
// Decorators split when their inner transport does, into the same decorator
// holding the inner split by value.
static_assert(terse::concepts::splittable_transport<terse::metered<local_transport&>>);
static_assert(terse::concepts::splittable_transport<terse::simulated_network<local_transport>>);
static_assert(terse::concepts::splittable_transport<terse::faulty<terse::metered<local_transport&>>>);
static_assert(std::is_same_v<decltype(std::declval<terse::metered<local_transport&>&>().split(0, 0)),
                             terse::metered<local_transport>>);
static_assert(
    std::is_same_v<decltype(std::declval<terse::simulated_network<terse::metered<local_transport&>>&>().split_shared()),
                   terse::simulated_network<terse::metered<local_transport>>>);
static_assert(!terse::concepts::splittable_transport<terse::metered<unsplittable&>>);

constexpr int world = 8;

// Where rank r of 8 lands for split(r % 2, -r) and split(r / 3, -r): keys
// reverse the order, so the highest rank of a group is its sub rank 0.
struct placement {
  int colour;
  int sub_rank;
  int sub_size;
};
placement by_parity(int r)
{
  return {r % 2, (world - 1 - r) / 2, world / 2};
}
placement by_thirds(int r)
{
  const int colour = r / 3;
  const int last = std::min(3 * colour + 2, world - 1);
  return {colour, last - r, last - 3 * colour + 1};
}
// The parent rank of sub rank s in r's group.
int member(placement (*place)(int), int r, int s)
{
  for (int q = 0; q < world; ++q) {
    if (place(q).colour == place(r).colour && place(q).sub_rank == s) {
      return q;
    }
  }
  return -1;
}

struct error_log {
  std::mutex guard;
  std::vector<terse::errc> codes;
  void record(const terse::error& e)
  {
    const std::lock_guard lock(guard);
    codes.push_back(e.code());
  }
  int count(terse::errc code)
  {
    const std::lock_guard lock(guard);
    return static_cast<int>(std::count(codes.begin(), codes.end(), code));
  }
};

terse::transport_options patient()
{
  return terse::transport_options{.timeout = std::chrono::seconds(60)};
}

}  // namespace

TEST_CASE("split places every rank by colour and by (key, parent rank), unequal sizes included")
{
  std::vector<std::array<int, 4>> got(world);
  terse::run_local(world, [&](local_transport& t) {
    const local_transport halves = t.split(t.rank() % 2, -t.rank());
    const local_transport thirds = t.split(t.rank() / 3, -t.rank());
    got[static_cast<std::size_t>(t.rank())] = {halves.rank(), halves.size(), thirds.rank(), thirds.size()};
  });
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    const auto& g = got[static_cast<std::size_t>(r)];
    CHECK(g[0] == by_parity(r).sub_rank);
    CHECK(g[1] == by_parity(r).sub_size);
    CHECK(g[2] == by_thirds(r).sub_rank);
    CHECK(g[3] == by_thirds(r).sub_size);
  }
  // Equal keys fall back to the parent rank; split_shared is every rank.
  std::vector<std::array<int, 4>> tied(world);
  terse::run_local(world, [&](local_transport& t) {
    const local_transport same_key = t.split(t.rank() % 3, 7);
    const local_transport shared = t.split_shared();
    tied[static_cast<std::size_t>(t.rank())] = {same_key.rank(), same_key.size(), shared.rank(), shared.size()};
  });
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    const auto& g = tied[static_cast<std::size_t>(r)];
    CHECK(g[0] == r / 3);
    CHECK(g[1] == (r % 3 == 2 ? 2 : 3));
    CHECK(g[2] == r);
    CHECK(g[3] == world);
  }
}

TEST_CASE("verbs and exchanges on sub-transports are exact while the parent and a sibling carry traffic")
{
  for (placement (*place)(int) : {&by_parity, &by_thirds}) {
    std::vector<char> right(world, 0);
    terse::run_local(
        world,
        [&](local_transport& t) {
          const int r = t.rank();
          local_transport sub = t.split(place(r).colour, -r);
          const int s = sub.rank();
          const int w = sub.size();
          bool ok = s == place(r).sub_rank && w == place(r).sub_size;

          // An exchange in flight on the parent and one on the sub, same tag,
          // both rings, while collectives run on each.
          std::array<std::int64_t, 3> to_parent{r, r * 10, r * 100};
          std::array<std::int64_t, 3> from_parent{};
          const int left = (r + world - 1) % world;
          const std::array parent_sends{
              terse::outgoing<>{.peer = (r + 1) % world, .bytes = std::as_bytes(std::span(to_parent))}};
          const std::array parent_recvs{
              terse::incoming<>{.peer = left, .bytes = std::as_writable_bytes(std::span(from_parent))}};
          const terse::exchange_id on_parent = t.start_exchange(sends_span(parent_sends), recvs_span(parent_recvs), 7);

          std::array<std::int64_t, 2> to_sub{r, -r};
          std::array<std::int64_t, 2> from_sub{};
          const int sub_left = (s + w - 1) % w;
          const std::array sub_sends{terse::outgoing<>{.peer = (s + 1) % w, .bytes = std::as_bytes(std::span(to_sub))}};
          const std::array sub_recvs{
              terse::incoming<>{.peer = sub_left, .bytes = std::as_writable_bytes(std::span(from_sub))}};
          const terse::exchange_id on_sub = sub.start_exchange(sends_span(sub_sends), recvs_span(sub_recvs), 7);

          // allreduce: the sum of the members' parent ranks, twice over 5 elements.
          std::vector<std::int64_t> values(5);
          for (std::size_t i = 0; i < values.size(); ++i) {
            values[i] = r + static_cast<std::int64_t>(i);
          }
          sub.allreduce(host_span<std::int64_t>(values), terse::reduce_op::sum);
          std::int64_t member_sum = 0;
          for (int m = 0; m < w; ++m) {
            member_sum += member(place, r, m);
          }
          for (std::size_t i = 0; i < values.size(); ++i) {
            ok = ok && values[i] == member_sum + w * static_cast<std::int64_t>(i);
          }

          // The parent's own allreduce in between.
          std::vector<double> everyone{static_cast<double>(r)};
          t.allreduce(host_span<double>(everyone), terse::reduce_op::sum);
          ok = ok && everyone[0] == world * (world - 1) / 2;

          // allgather: block m is sub rank m's parent rank.
          const std::array<std::int32_t, 1> mine{r};
          std::vector<std::int32_t> gathered(static_cast<std::size_t>(w));
          sub.allgather(host_span<const std::int32_t>(mine), host_span<std::int32_t>(gathered));
          for (int m = 0; m < w; ++m) {
            ok = ok && gathered[static_cast<std::size_t>(m)] == member(place, r, m);
          }

          // reduce_scatter: block m of every input is (m + 1) * parent rank.
          std::vector<std::int64_t> blocks(2 * static_cast<std::size_t>(w));
          for (int m = 0; m < w; ++m) {
            blocks[2 * static_cast<std::size_t>(m)] = (m + 1) * r;
            blocks[2 * static_cast<std::size_t>(m) + 1] = 1;
          }
          std::array<std::int64_t, 2> own{};
          sub.reduce_scatter(host_span<const std::int64_t>(blocks), host_span<std::int64_t>(own),
                             terse::reduce_op::sum);
          ok = ok && own[0] == (s + 1) * member_sum && own[1] == w;

          // broadcast from the last sub rank.
          std::array<std::int64_t, 2> root_value{r, 2 * r};
          sub.broadcast(host_span<std::int64_t>(root_value), w - 1);
          ok = ok && root_value[0] == member(place, r, w - 1) && root_value[1] == 2 * member(place, r, w - 1);

          sub.barrier();
          t.wait(on_parent);
          sub.wait(on_sub);
          ok = ok && from_parent == std::array<std::int64_t, 3>{left, left * 10, left * 100};
          const int sub_left_rank = member(place, r, sub_left);
          ok = ok && from_sub == std::array<std::int64_t, 2>{sub_left_rank, -sub_left_rank};
          ok = ok && sub.healthy() && t.healthy();
          right[static_cast<std::size_t>(r)] = ok ? 1 : 0;
        },
        patient());
    CHECK(right == std::vector<char>(world, 1));
  }
}

TEST_CASE("a negative colour gives a transport of the rank alone")
{
  std::vector<std::array<std::int64_t, 3>> got(world);
  terse::run_local(world, [&](local_transport& t) {
    const int r = t.rank();
    local_transport sub = t.split(r == 3 || r == 6 ? -1 : 0, r);
    std::array<std::int64_t, 1> value{r};
    sub.allreduce(host_span<std::int64_t>(value), terse::reduce_op::sum);
    got[static_cast<std::size_t>(r)] = {sub.rank(), sub.size(), value[0]};
    // All negative: every rank alone, and the alone worlds are independent.
    local_transport alone = t.split(-5, 0);
    std::array<std::int64_t, 1> own{r};
    alone.allreduce(host_span<std::int64_t>(own), terse::reduce_op::sum);
    if (alone.size() != 1 || alone.rank() != 0 || own[0] != r) {
      got[static_cast<std::size_t>(r)][0] = -100;
    }
  });
  const std::int64_t rest = world * (world - 1) / 2 - 3 - 6;
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    const auto& g = got[static_cast<std::size_t>(r)];
    if (r == 3 || r == 6) {
      CHECK(g == std::array<std::int64_t, 3>{0, 1, r});
    } else {
      CHECK(g == std::array<std::int64_t, 3>{r - (r > 3 ? 1 : 0) - (r > 6 ? 1 : 0), world - 2, rest});
    }
  }
}

TEST_CASE("a mismatched call inside a sub-transport raises mismatch on its members only")
{
  error_log log;
  std::vector<char> healthy_after(world, 0);
  terse::run_local(
      world,
      [&](local_transport& t) {
        local_transport sub = t.split(t.rank() % 2, t.rank());
        std::vector<float> v(t.rank() == 3 ? 9 : 10, 1.0f);  // rank 3 is in the odd sub-transport
        try {
          sub.allreduce(host_span<float>(v), terse::reduce_op::sum);
        } catch (const terse::error& e) {
          log.record(e);
        }
        std::vector<float> ok(10, 1.0f);
        sub.allreduce(host_span<float>(ok), terse::reduce_op::sum);
        t.allreduce(host_span<float>(ok), terse::reduce_op::sum);
        healthy_after[static_cast<std::size_t>(t.rank())] =
            ok[0] == 4.0f * world && sub.healthy() && t.healthy() ? 1 : 0;
      },
      patient());
  CHECK(log.count(terse::errc::mismatch) == world / 2);
  CHECK(log.codes.size() == world / 2);
  CHECK(healthy_after == std::vector<char>(world, 1));
  // split and split_shared made by different ranks: a mismatch everywhere.
  error_log mixed;
  terse::run_local(
      4,
      [&](local_transport& t) {
        try {
          if (t.rank() == 0) {
            (void)t.split_shared();
          } else {
            (void)t.split(0, t.rank());
          }
        } catch (const terse::error& e) {
          mixed.record(e);
        }
      },
      patient());
  CHECK(mixed.count(terse::errc::mismatch) == 4);
}

TEST_CASE("a rank that throws in a sub-world fails its sub-world peers and the parent at once")
{
  error_log log;
  // Kept past run_local: every thread has then told every linked world.
  std::vector<std::optional<local_transport>> subs(world);
  const auto start = clock_type::now();
  try {
    terse::run_local(
        world,
        [&](local_transport& t) {
          local_transport& sub = subs[static_cast<std::size_t>(t.rank())].emplace(t.split(t.rank() % 2, t.rank()));
          t.barrier();  // every rank has its sub-transport
          if (t.rank() == 3) {
            throw std::runtime_error("boom in the odd sub-world");
          }
          std::vector<double> v(4, 1.0);
          try {
            if (t.rank() % 2 == 1) {
              sub.allreduce(host_span<double>(v), terse::reduce_op::sum);  // waits for rank 3
            } else {
              sub.barrier();  // the even sub-world finishes on its own ...
              t.barrier();    // ... but the parent waits for the odd ranks
            }
          } catch (const terse::error& e) {
            log.record(e);
          }
        },
        patient());
    FAIL("run_local did not rethrow");
  } catch (const terse::error& e) {
    FAIL("run_local rethrew a consequence, not the root cause: " << e.what());
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "boom in the odd sub-world");
  }
  CHECK(clock_type::now() - start < 5s);  // nobody waited out the 60 s timeout
  CHECK(log.count(terse::errc::peer_failed) == world - 1);
  for (const auto& sub : subs) {
    CHECK_FALSE(sub->healthy());  // the even sub-world too: a dead thread is dead everywhere
  }
}

TEST_CASE("a failure reported inside a sub-world breaks the parent and the siblings")
{
  // Rank 3 reports itself dead on its sub-transport only (as faulty's kill
  // does) and returns normally, so nothing but the link tells the parent.
  error_log log;
  const auto start = clock_type::now();
  terse::run_local(
      world,
      [&](local_transport& t) {
        local_transport sub = t.split(t.rank() % 2, t.rank());
        t.barrier();  // every rank has its sub-transport
        if (t.rank() == 3) {
          sub.abort("lost its device");
          return;
        }
        std::vector<double> v(4, 1.0);
        try {
          if (t.rank() % 2 == 1) {
            sub.allreduce(host_span<double>(v), terse::reduce_op::sum);
          } else {
            t.barrier();
          }
        } catch (const terse::error& e) {
          log.record(e);
        }
      },
      patient());
  CHECK(clock_type::now() - start < 5s);
  CHECK(log.count(terse::errc::peer_failed) == world - 1);

  // The same through faulty: a kill at the sub-transport's second call.
  error_log killed;
  bool rethrown = false;
  const auto again = clock_type::now();
  try {
    terse::run_local(
        world,
        [&](local_transport& t) {
          terse::faulty f(t, terse::fault_plan{.rank = 3, .at_call = 1, .kind = terse::fault_kind::kill});
          auto sub = f.split(t.rank() % 2, t.rank());
          t.barrier();  // every rank has its sub-transport
          std::vector<double> v(4, 1.0);
          try {
            sub.allreduce(host_span<double>(v), terse::reduce_op::sum);
            if (t.rank() % 2 == 1) {
              sub.allreduce(host_span<double>(v), terse::reduce_op::sum);
            } else {
              t.barrier();
            }
          } catch (const terse::error& e) {
            killed.record(e);
            if (t.rank() == 3) {
              throw;
            }
          }
        },
        patient());
  } catch (const terse::error& e) {
    rethrown = true;
    CHECK(e.code() == terse::errc::peer_failed);
    CHECK(std::string(e.what()).find("injected kill fault") != std::string::npos);
  }
  CHECK(rethrown);
  CHECK(clock_type::now() - again < 5s);
  CHECK(killed.count(terse::errc::peer_failed) == world);
}

TEST_CASE("a silent rank in a sub-world times its peers out there, and the timeout breaks the parent")
{
  error_log log;
  std::vector<char> parent_healthy(world, 1);
  terse::run_local(
      4,
      [&](local_transport& t) {
        local_transport sub = t.split(t.rank() / 2, t.rank());
        if (t.rank() == 1) {
          std::this_thread::sleep_for(600ms);  // rank 0 waits for it in vain
        } else if (t.rank() == 0) {
          try {
            sub.barrier();
          } catch (const terse::error& e) {
            log.record(e);
          }
        }
        parent_healthy[static_cast<std::size_t>(t.rank())] = t.healthy() ? 1 : 0;
      },
      terse::transport_options{.timeout = 200ms});
  CHECK(log.count(terse::errc::timeout) == 1);
  CHECK(parent_healthy[0] == 0);
  CHECK(parent_healthy[1] == 0);
}

TEST_CASE("a split of a split is a transport over its own subset")
{
  std::vector<std::array<std::int64_t, 3>> got(world);
  terse::run_local(
      world,
      [&](local_transport& t) {
        const int r = t.rank();
        local_transport half = t.split(r / 4, r);               // {0..3}, {4..7}
        local_transport pair = half.split(half.rank() % 2, 0);  // {0,2}, {1,3}, {4,6}, {5,7}
        std::array<std::int64_t, 1> value{r};
        pair.allreduce(host_span<std::int64_t>(value), terse::reduce_op::sum);
        got[static_cast<std::size_t>(r)] = {pair.rank(), pair.size(), value[0]};
        t.barrier();  // every pair is built and done
        // The nested world is linked too: a rank aborting it breaks the top.
        if (r == 5) {
          pair.abort("nested failure");
        } else {
          try {
            t.barrier();
          } catch (const terse::error&) {
            got[static_cast<std::size_t>(r)][1] += 100;  // marks "failed promptly"
          }
        }
      },
      patient());
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    const int base = (r / 4) * 4 + (r % 2);
    const std::int64_t size = r == 5 ? 2 : 102;
    CHECK(got[static_cast<std::size_t>(r)] == std::array<std::int64_t, 3>{(r % 4) / 2, size, 2 * base + 2});
  }
}

TEST_CASE("metered sub-transports count their own bytes from zero")
{
  constexpr std::size_t n = 10;
  std::vector<std::array<std::uint64_t, 4>> got(world);
  terse::run_local(world, [&](local_transport& t) {
    terse::metered parent(t);
    std::vector<float> before(n, 1.0f);
    parent.allreduce(host_span<float>(before), terse::reduce_op::sum);
    const terse::meter parent_counts = parent.counts();
    terse::metered<local_transport> sub = parent.split(t.rank() / 3, t.rank());
    std::vector<double> v(n, 1.0);
    sub.allreduce(host_span<double>(v), terse::reduce_op::sum);
    got[static_cast<std::size_t>(t.rank())] = {sub.counts(terse::verb::allreduce).calls,
                                               sub.counts(terse::verb::allreduce).bytes_sent,
                                               sub.counts().total().calls, parent.counts() == parent_counts ? 1u : 0u};
  });
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    const placement p = by_thirds(r);
    const int sub_rank = r - 3 * p.colour;
    const std::uint64_t others = n - terse::detail::block_of(n, p.sub_size, sub_rank).count;
    CHECK(got[static_cast<std::size_t>(r)] == std::array<std::uint64_t, 4>{1, 2 * others * sizeof(double), 1, 1});
  }
}

TEST_CASE("simulated_network sub-transports see the parent's links among their members")
{
  // Two nodes of four ranks: 100 GB/s inside a node, 1 GB/s between nodes.
  constexpr double intra = 100e9;
  constexpr double inter = 1e9;
  constexpr double latency = 2e-6;
  const auto model = terse::network_model::two_level(world, 4, intra, inter, latency);
  constexpr std::size_t bytes = 1 << 16;
  std::vector<std::array<double, 2>> seconds(world);
  std::vector<char> links_right(world, 0);
  terse::run_local(world, [&](local_transport& t) {
    terse::simulated_network net(t, model);
    const int r = t.rank();
    // across: {r, r + 4} pairs straddle the nodes; within: pairs inside a node.
    auto across = net.split(r % 4, r);
    auto within = net.split(r / 2, r);
    std::vector<std::byte> out(bytes, std::byte{1});
    std::vector<std::byte> in(bytes);
    for (auto* sub : {&across, &within}) {
      const int peer = 1 - sub->rank();
      const std::array sends{terse::outgoing<>{.peer = peer, .bytes = std::span<const std::byte>(out)}};
      const std::array recvs{terse::incoming<>{.peer = peer, .bytes = std::span<std::byte>(in)}};
      sub->wait(sub->start_exchange(sends_span(sends), recvs_span(recvs), 1));
    }
    seconds[static_cast<std::size_t>(r)] = {across.modelled_seconds(), within.modelled_seconds()};
    const int partner_across = r < 4 ? r + 4 : r - 4;
    const int partner_within = r ^ 1;
    bool ok = across.model().link_bandwidth_bytes_per_s.size() == 4 &&
              within.model().link_bandwidth_bytes_per_s.size() == 4 && net.modelled_seconds() == 0.0;
    ok = ok && across.model().link_bandwidth(across.rank(), 1 - across.rank(), 2) ==
                   model.link_bandwidth(r, partner_across, world);
    ok = ok && within.model().link_bandwidth(within.rank(), 1 - within.rank(), 2) ==
                   model.link_bandwidth(r, partner_within, world);
    ok = ok && across.model().latency_s == latency;
    // split_shared keeps everyone in order: the same matrix.
    auto shared = net.split_shared();
    ok = ok && shared.model().link_bandwidth_bytes_per_s == model.link_bandwidth_bytes_per_s;
    links_right[static_cast<std::size_t>(r)] = ok ? 1 : 0;
  });
  CHECK(links_right == std::vector<char>(world, 1));
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    CHECK(seconds[static_cast<std::size_t>(r)][0] == doctest::Approx(latency + bytes / inter).epsilon(1e-12));
    CHECK(seconds[static_cast<std::size_t>(r)][1] == doctest::Approx(latency + bytes / intra).epsilon(1e-12));
  }
}

TEST_CASE("simulated_network sub-transports keep the wall clock mode")
{
  const auto model = terse::network_model{.latency_s = 0.03, .bandwidth_bytes_per_s = 1e12};
  std::vector<double> waited(4, 0.0);
  terse::run_local(4, [&](local_transport& t) {
    terse::simulated_network net(t, model, terse::wall_clock::follows_model);
    auto sub = net.split(t.rank() % 2, t.rank());
    std::array<std::byte, 8> out{};
    std::array<std::byte, 8> in{};
    const std::array sends{terse::outgoing<>{.peer = 1 - sub.rank(), .bytes = std::span<const std::byte>(out)}};
    const std::array recvs{terse::incoming<>{.peer = 1 - sub.rank(), .bytes = std::span<std::byte>(in)}};
    const auto begin = clock_type::now();
    sub.wait(sub.start_exchange(sends_span(sends), recvs_span(recvs), 1));
    waited[static_cast<std::size_t>(t.rank())] = std::chrono::duration<double>(clock_type::now() - begin).count();
  });
  for (const double w : waited) {
    CHECK(w >= 0.03);
  }
}

TEST_CASE("faulty sub-transports carry the plan to the same rank, and a stopped rank cannot split")
{
  std::vector<std::array<int, 2>> plans(world);
  terse::run_local(world, [&](local_transport& t) {
    terse::faulty f(t, terse::fault_plan{.rank = 5, .at_call = 9, .kind = terse::fault_kind::delay});
    auto sub = f.split(0, -t.rank());
    plans[static_cast<std::size_t>(t.rank())] = {sub.plan().rank, sub.rank()};
    CHECK(sub.calls() == 0);
    CHECK(sub.plan().at_call == 9);
  });
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    CHECK(plans[static_cast<std::size_t>(r)][0] == (r == 5 ? plans[5][1] : -1));
  }
  CHECK(plans[5][1] == world - 1 - 5);

  error_log log;
  terse::run_local(
      4,
      [&](local_transport& t) {
        terse::faulty f(t, terse::fault_plan{.rank = 2, .at_call = 0, .kind = terse::fault_kind::kill});
        try {
          f.barrier();  // rank 2 dies here, and tells the others
        } catch (const terse::error& e) {
          log.record(e);
        }
        try {
          (void)f.split(0, 0);
        } catch (const terse::error& e) {
          log.record(e);
        }
      },
      patient());
  CHECK(log.count(terse::errc::peer_failed) == 8);
}

TEST_CASE("the example of docs/transports.md: the ranks of a host, and one leader per host")
{
  std::vector<std::array<int, 2>> got(world);
  terse::run_local(world, [&](local_transport& t) {
    auto host = t.split_shared();                                 // the ranks of this rank's host
    auto leaders = t.split(host.rank() == 0 ? 0 : -1, t.rank());  // one rank per host; the others alone
    got[static_cast<std::size_t>(t.rank())] = {host.size(), leaders.size()};
  });
  for (const auto& g : got) {
    CHECK(g == std::array<int, 2>{world, 1});  // one process: one host, so one leader
  }
}

#pragma once
/// @file
/// `terse::local_transport`: W ranks as threads of one process. It is a real
/// transport (the embedded default for tests, demos and single-machine
/// studies), not a mock: ranks rendezvous, read each other's buffers and
/// honour the same timeouts, checks and failure rules as MPI and NCCL.
/// (Over 400 lines: one short body per verb, and split.)
///
/// @code
/// terse::run_local(8, [&](terse::local_transport& t) {
///   std::vector<float> grad = compute_gradient(t.rank());
///   t.allreduce(terse::host_span<float>(grad), terse::reduce_op::average);
/// });
/// @endcode

#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/span.hpp>
#include <terse/core/verbs.hpp>
#include <terse/transport/detail/local_exchange.hpp>
#include <terse/transport/detail/local_state.hpp>
#include <terse/transport/detail/partition.hpp>
#include <terse/transport/detail/reduce.hpp>

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace terse {

class local_transport;

/// The shared world of W in-process ranks. Hand each rank's thread its own
/// transport(rank); the world lives as long as any of them.
class local_world {
 public:
  explicit local_world(int size, transport_options options = {})
  {
    TERSE_EXPECTS(size >= 1, "a world has at least one rank");
    TERSE_EXPECTS(options.timeout.count() > 0, "the timeout must be positive");
    state_ = std::make_shared<detail::local_state>(size, options);
  }

  int size() const noexcept { return state_->size(); }
  local_transport transport(int rank) const;

 private:
  std::shared_ptr<detail::local_state> state_;
};

/// One rank of a local_world. Use it from one thread only.
class local_transport {
 public:
  local_transport(const local_transport&) = delete;
  local_transport& operator=(const local_transport&) = delete;
  local_transport(local_transport&&) noexcept = default;
  local_transport& operator=(local_transport&&) noexcept = default;
  ~local_transport() = default;

  /// Host memory only.
  template <memory_space S>
  static constexpr bool accepts_memory = S == memory_space::host;

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return state_->size(); }
  const transport_options& options() const noexcept { return state_->options(); }
  /// False once any rank timed out or failed; every verb then throws. (With
  /// failure_scope::peer a failed rank leaves the world healthy.)
  bool healthy() const noexcept { return state_->healthy(); }

  /// Reports this rank as failed: peers waiting on it get errc::peer_failed
  /// at once instead of waiting out their timeout. With failure_scope::peer
  /// only this rank is dead: its peers' exchanges with it fail
  /// (terse::peer_error) and the others go on.
  void abort(std::string_view reason) noexcept { state_->fail(rank_, reason); }

  template <reducible T, memory_space S>
  void allreduce(std::type_identity_t<span<const T, S>> in, span<T, S> out, reduce_op op)
  {
    host_only<S>();
    std::string problem = reduce_problem<T>(op);
    if (in.size() != out.size()) {
      problem = "allreduce needs in.size() == out.size() (" + std::to_string(in.size()) +
                " != " + std::to_string(out.size()) + ")";
    } else if (partially_overlap(in, out)) {
      problem = "allreduce input and output overlap without being the same buffer";
    }
    const auto call = describe_call<T>(verb::allreduce, out.size(), op);
    const std::uint64_t seq = enter(call, in.data(), out.data(), nullptr, problem);
    // (no structured binding: clang before 16 cannot capture one in a lambda)
    const detail::block_range own = detail::block_of(out.size(), size(), rank_);
    const std::size_t begin = own.begin;
    detail::reduce_rank_order<T>(
        op, size(), own.count, [&](int r) { return input<T>(r, seq) + begin; }, size(),
        [&](int r) { return output<T>(r, seq) + begin; });
    state_->leave(rank_, verb::allreduce);  // peers still read our input until here
  }

  /// In-place allreduce.
  template <reducible T, memory_space S>
  void allreduce(span<T, S> buffer, reduce_op op)
  {
    allreduce<T, S>(buffer, buffer, op);
  }

  /// `out` = op over ranks of block rank() of `in` (blocks of out.size()).
  /// `out` may be this rank's block of `in`.
  template <reducible T, memory_space S>
  void reduce_scatter(std::type_identity_t<span<const T, S>> in, span<T, S> out, reduce_op op)
  {
    host_only<S>();
    std::string problem = reduce_problem<T>(op);
    const std::size_t block = out.size();
    if (in.size() != block * static_cast<std::size_t>(size())) {
      problem = "reduce_scatter needs in.size() == size() * out.size() (" + std::to_string(in.size()) +
                " != " + std::to_string(size()) + " * " + std::to_string(block) + ")";
    } else if (partially_overlap(in.subspan(block * static_cast<std::size_t>(rank_), block), out) ||
               (overlap(in, out) && out.data() != in.data() + block * static_cast<std::size_t>(rank_))) {
      problem = "reduce_scatter output may only alias this rank's own block of the input";
    }
    const auto call = describe_call<T>(verb::reduce_scatter, block, op);
    const std::uint64_t seq = enter(call, in.data(), out.data(), nullptr, problem);
    const std::size_t begin = block * static_cast<std::size_t>(rank_);
    detail::reduce_rank_order<T>(
        op, size(), block, [&](int r) { return input<T>(r, seq) + begin; }, 1, [&](int) { return out.data(); });
    state_->leave(rank_, verb::reduce_scatter);
  }

  /// Block r of `out` = rank r's `in`. `in` may be this rank's block of `out`.
  template <transportable T, memory_space S>
  void allgather(std::type_identity_t<span<const T, S>> in, span<T, S> out)
  {
    host_only<S>();
    std::string problem;
    const std::size_t block = in.size();
    const T* own_block = out.data() + block * static_cast<std::size_t>(rank_);
    if (out.size() != block * static_cast<std::size_t>(size())) {
      problem = "allgather needs out.size() == size() * in.size() (" + std::to_string(out.size()) +
                " != " + std::to_string(size()) + " * " + std::to_string(block) + ")";
    } else if (overlap(in, out) && in.data() != own_block) {
      problem = "allgather input may only alias this rank's own block of the output";
    }
    const auto call = describe_call<T>(verb::allgather, block, reduce_op::sum);
    const std::uint64_t seq = enter(call, in.data(), out.data(), nullptr, problem);
    for (int r = 0; r < size(); ++r) {
      copy(input<T>(r, seq), out.data() + block * static_cast<std::size_t>(r), block);
    }
    state_->leave(rank_, verb::allgather);
  }

  /// Rank r's `in` lands at offset sum(counts[0..r)) of `out`.
  template <transportable T, memory_space S>
  void allgatherv(std::type_identity_t<span<const T, S>> in, span<T, S> out, host_span<const std::size_t> counts)
  {
    host_only<S>();
    std::string problem;
    if (counts.size() != static_cast<std::size_t>(size())) {
      problem = "allgatherv needs one count per rank (" + std::to_string(counts.size()) + " given for " +
                std::to_string(size()) + " ranks)";
    } else if (counts[static_cast<std::size_t>(rank_)] != in.size()) {
      problem = "allgatherv: counts[rank()] = " + std::to_string(counts[static_cast<std::size_t>(rank_)]) +
                " but in.size() = " + std::to_string(in.size());
    } else if (std::accumulate(counts.begin(), counts.end(), std::size_t{0}) != out.size()) {
      problem = "allgatherv needs out.size() == sum(counts)";
    } else if (overlap(in, out)) {
      problem = "allgatherv input and output must not overlap";
    }
    auto call = describe_call<T>(verb::allgatherv, in.size(), reduce_op::sum);
    call.counts_hash = detail::hash_counts(counts.as_std());
    const std::uint64_t seq = enter(call, in.data(), out.data(), counts.data(), problem);
    std::size_t offset = 0;
    for (int r = 0; r < size(); ++r) {
      const std::size_t count = counts[static_cast<std::size_t>(r)];
      copy(input<T>(r, seq), out.data() + offset, count);
      offset += count;
    }
    state_->leave(rank_, verb::allgatherv);
  }

  /// Every rank's `buffer` becomes root's.
  template <transportable T, memory_space S>
  void broadcast(span<T, S> buffer, int root)
  {
    host_only<S>();
    std::string problem;
    if (root < 0 || root >= size()) {
      problem = "broadcast root " + std::to_string(root) + " is not a rank of a world of " + std::to_string(size());
    }
    auto call = describe_call<T>(verb::broadcast, buffer.size(), reduce_op::sum);
    call.root = root;
    const std::uint64_t seq = enter(call, buffer.data(), buffer.data(), nullptr, problem);
    if (rank_ != root) {
      copy(input<T>(root, seq), buffer.data(), buffer.size());
    }
    state_->leave(rank_, verb::broadcast);
  }

  /// Buffered: returns once the message is queued, without waiting for the
  /// receiver (a stronger promise than the contract makes).
  template <transportable T, memory_space S>
  void send(span<T, S> buffer, int peer, int tag)
  {
    host_only<S>();
    check_peer(peer, tag);
    state_->post(rank_, peer, tag, data_type_v<T>, buffer.size(), reinterpret_cast<const std::byte*>(buffer.data()),
                 buffer.size_bytes());
  }

  template <transportable T, memory_space S>
  void recv(span<T, S> buffer, int peer, int tag)
  {
    static_assert(!std::is_const_v<T>, "recv needs a writable span");
    host_only<S>();
    check_peer(peer, tag);
    state_->take(rank_, peer, tag, data_type_v<T>, buffer.size(), reinterpret_cast<std::byte*>(buffer.data()),
                 buffer.size_bytes());
  }

  /// Sends to `dest` and receives from `source` without deadlock.
  template <transportable T, memory_space S>
  void sendrecv(std::type_identity_t<span<const T, S>> send_buffer, int dest, span<T, S> recv_buffer, int source,
                int tag)
  {
    send(send_buffer, dest, tag);
    recv(recv_buffer, source, tag);
  }

  /// Posts every message of a grouped exchange (core/exchange.hpp). Sends
  /// are buffered copies, so the send buffers are free again on return.
  exchange_id start_exchange(host_span<const outgoing<>> sends, host_span<const incoming<>> recvs, int tag)
  {
    return exchanges_.start(*state_, rank_, sends, recvs, tag);
  }
  /// True once every receive of `id` has its message; never blocks.
  bool test(exchange_id id) { return exchanges_.test(*state_, rank_, id); }
  /// Blocks until every receive of `id` has its message.
  void wait(exchange_id id) { exchanges_.wait(*state_, rank_, id); }
  /// With failure_scope::peer: like test(id) and wait(id), but a message to
  /// or from a dead peer (or from one silent past the deadline) does not
  /// raise; it is listed in `report` and the rest completes. (With
  /// failure_scope::world the report stays empty.)
  bool test(exchange_id id, exchange_report& report) { return exchanges_.test(*state_, rank_, id, &report); }
  void wait(exchange_id id, exchange_report& report) { exchanges_.wait(*state_, rank_, id, &report); }

  void barrier()
  {
    const auto call = describe_call<std::byte>(verb::barrier, 0, reduce_op::sum);
    enter(call, nullptr, nullptr, nullptr, {});
  }

  /// Collective over this transport (every rank calls it, within
  /// options().timeout). Ranks passing the same colour (>= 0) form one
  /// sub-transport, ranked by (key, parent rank); a negative colour gives a
  /// transport of this rank alone (size 1). The sub-transport is a new
  /// in-process world shared by the group's threads, with this world's
  /// options, linked to this one: if either breaks (a timeout, a rank's
  /// abort, run_local reporting a thrown rank), both do, and ranks waiting
  /// in either get errc::peer_failed at once. Costs one allgather of three
  /// integers; the sub-world's verbs allocate nothing once warm, as here.
  local_transport split(int colour, int key) { return split_by(split_kind::by_colour, colour, key); }

  /// Ranks that share a host: every rank, since the threads share one
  /// process (split(0, rank())).
  local_transport split_shared() { return split_by(split_kind::shared, 0, rank_); }

 private:
  friend class local_world;
  local_transport(std::shared_ptr<detail::local_state> state, int rank) : state_(std::move(state)), rank_(rank) {}

  enum class split_kind : std::int64_t { by_colour = 0x5e11, shared = 0x5e12 };

  local_transport split_by(split_kind kind, int colour, int key)
  {
    const std::int64_t mine[3] = {static_cast<std::int64_t>(kind), colour, key};
    std::vector<std::int64_t> all(3 * static_cast<std::size_t>(size()));
    allgather<std::int64_t, memory_space::host>(host_span<const std::int64_t>(mine, 3), host_span<std::int64_t>(all));
    // The allgather's call number is the same on every rank: it names this split.
    const std::uint64_t split_id = sequence_ - 1;
    const auto at = [&](int r, int field) {
      return all[3 * static_cast<std::size_t>(r) + static_cast<std::size_t>(field)];
    };
    int members = 0;
    int position = 0;
    for (int r = 0; r < size(); ++r) {
      if (at(r, 0) != mine[0]) {
        TERSE_FAIL(errc::mismatch, "rank " + std::to_string(r) + " did not call the same split as rank " +
                                       std::to_string(rank_) + " (split and split_shared, or split and allgather)");
      }
      if (colour >= 0 && at(r, 1) == colour) {
        ++members;
        position += at(r, 2) < key || (at(r, 2) == key && r < rank_) ? 1 : 0;
      }
    }
    if (colour < 0) {
      return local_transport(state_->join_split(split_id, -1, 1), 0);
    }
    return local_transport(state_->join_split(split_id, colour, members), position);
  }

  template <memory_space S>
  static constexpr void host_only()
  {
    static_assert(S == memory_space::host,
                  "local_transport moves host memory only: copy device buffers to the host first, or use "
                  "nccl_transport or mpi_transport for device buffers");
  }

  template <class T>
  static std::string reduce_problem(reduce_op op)
  {
    if (std::is_integral_v<T> && op == reduce_op::average) {
      return "average is defined for floating-point types only";
    }
    return {};
  }

  template <class T>
  static detail::call_descriptor describe_call(verb what, std::size_t count, reduce_op op)
  {
    detail::call_descriptor call;
    call.what = what;
    call.type = data_type_v<std::remove_const_t<T>>;
    call.op = op;
    call.count = count;
    return call;
  }

  template <class A, class B, memory_space S>
  static bool overlap(span<A, S> a, span<B, S> b) noexcept
  {
    const auto* a0 = reinterpret_cast<const std::byte*>(a.data());
    const auto* b0 = reinterpret_cast<const std::byte*>(b.data());
    return a.size() != 0 && b.size() != 0 && a0 < b0 + b.size_bytes() && b0 < a0 + a.size_bytes();
  }

  template <class A, class B, memory_space S>
  static bool partially_overlap(span<A, S> a, span<B, S> b) noexcept
  {
    return overlap(a, b) && !(static_cast<const void*>(a.data()) == static_cast<const void*>(b.data()) &&
                              a.size_bytes() == b.size_bytes());
  }

  void check_peer(int peer, int tag) const
  {
    TERSE_EXPECTS(peer >= 0 && peer < size(),
                  "peer " + std::to_string(peer) + " is not a rank of a world of " + std::to_string(size()));
    TERSE_EXPECTS(tag >= 0, "tags are non-negative");
  }

  /// Publishes this rank's call, waits for every rank, and checks that all
  /// made the same call with valid arguments. On a mismatch every rank
  /// throws and the world stays healthy. Returns the call's sequence number.
  std::uint64_t enter(detail::call_descriptor call, const void* in, void* out, const std::size_t* counts,
                      const std::string& problem)
  {
    call.arguments_valid = problem.empty();
    const std::uint64_t seq = sequence_++;
    state_->publish(rank_, seq, detail::local_slot{call, in, out, counts});
    state_->rendezvous(rank_, call.what);
    if (!problem.empty()) {
      TERSE_FAIL(errc::invalid_argument, problem);
    }
    const detail::call_descriptor& first = state_->slot(0, seq).call;
    for (int r = 0; r < size(); ++r) {
      const detail::call_descriptor& other = state_->slot(r, seq).call;
      if (!other.arguments_valid) {
        TERSE_FAIL(errc::mismatch,
                   "rank " + std::to_string(r) + " called " + detail::describe(other) + " with invalid arguments");
      }
      if (!other.same_call(first)) {
        TERSE_FAIL(errc::mismatch, "rank 0 called " + detail::describe(first) + " but rank " + std::to_string(r) +
                                       " called " + detail::describe(other));
      }
    }
    return seq;
  }

  template <class T>
  const T* input(int r, std::uint64_t seq) noexcept
  {
    return static_cast<const T*>(state_->slot(r, seq).in);
  }
  template <class T>
  T* output(int r, std::uint64_t seq) noexcept
  {
    return static_cast<T*>(state_->slot(r, seq).out);
  }

  template <class T>
  static void copy(const T* from, T* to, std::size_t count) noexcept
  {
    if (from != to && count != 0) {
      std::memcpy(static_cast<void*>(to), static_cast<const void*>(from), count * sizeof(T));
    }
  }

  std::shared_ptr<detail::local_state> state_;
  int rank_ = 0;
  std::uint64_t sequence_ = 0;
  detail::local_exchanges exchanges_;
};

inline local_transport local_world::transport(int rank) const
{
  TERSE_EXPECTS(rank >= 0 && rank < size(), "rank out of range");
  return local_transport(state_, rank);
}

/// Runs `body(local_transport&)` on `size` threads, one rank each, and
/// waits for all. If any rank throws, its peers are told at once (they get
/// errc::peer_failed rather than waiting out the timeout) and the first
/// root-cause exception is rethrown here. With failure_scope::peer a rank
/// whose body returns or throws is marked dead there and then, so its peers
/// see a failed peer at once and the others go on.
template <class Body>
void run_local(int size, Body&& body, transport_options options = {})
{
  local_world world(size, options);
  std::vector<std::exception_ptr> failures(static_cast<std::size_t>(size));
  // char, not bool: std::vector<bool> packs ranks into one word, a data race.
  std::vector<char> consequential(static_cast<std::size_t>(size), 0);
  {
    std::vector<std::jthread> threads;
    threads.reserve(static_cast<std::size_t>(size));
    for (int r = 0; r < size; ++r) {
      threads.emplace_back([&, r] {
        local_transport transport = world.transport(r);
        try {
          body(transport);
          if (transport.options().failures == failure_scope::peer) {
            transport.abort("its thread ended");
          }
        } catch (const error& e) {
          failures[static_cast<std::size_t>(r)] = std::current_exception();
          consequential[static_cast<std::size_t>(r)] = e.code() == errc::peer_failed;
          transport.abort(e.what());
        } catch (const std::exception& e) {
          failures[static_cast<std::size_t>(r)] = std::current_exception();
          transport.abort(e.what());
        } catch (...) {
          failures[static_cast<std::size_t>(r)] = std::current_exception();
          transport.abort("unknown exception");
        }
      });
    }
  }
  for (std::size_t r = 0; r < failures.size(); ++r) {
    if (failures[r] && !consequential[r]) {
      std::rethrow_exception(failures[r]);
    }
  }
  for (const auto& failure : failures) {
    if (failure) {
      std::rethrow_exception(failure);
    }
  }
}

}  // namespace terse

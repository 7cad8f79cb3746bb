#pragma once
/// @file
/// `terse::relay_sum<Transport>`: RelaySum on a tree (Vogels, Karimireddy,
/// Jaggi et al., "RelaySum for Decentralized Deep Learning on Heterogeneous
/// Data", NeurIPS 2021). Gossip averaging on a tree mixes slowly; relaying
/// sums instead of averages makes it exact. Each step rank i sends every
/// neighbour j the sum of its own value and what its other neighbours sent
/// it the step before, with the count of values in that sum:
///
///     m(i->j, t) = x_i(t) + sum over k in N(i) \ {j} of m(k->i, t-1)
///     c(i->j, t) = 1      + sum over k in N(i) \ {j} of c(k->i, t-1)
///
/// so m(j->i, t) covers every rank within distance t + 1 of i behind j,
/// each exactly once. With values held fixed, rank i holds the exact mean
/// after exactly ecc(i) steps (its eccentricity), and not before.
///
/// @code
/// terse::relay_sum relay(transport, n, terse::topology::binary_tree(W));
/// for (each step) {
///   optimizer_step(x);
///   relay.mix(terse::host_span<float>(x));  // RelaySum/Model: x <- the relayed mean
/// }
/// @endcode
///
/// `mix` is the paper's model update: x <- (x + sum of m(j->i) + (W - 1 -
/// sum of c(j->i)) x) / W, i.e. the values not relayed yet are stood in for
/// by this rank's own. Its replicas reach one value, but not the mean of
/// where they started: standing in a rank's own value for the missing ones
/// weighs near ranks more during the first ecc steps. `relay(x, out)`
/// writes the relayed mean of what has arrived, (x + sum of m) / (1 + sum
/// of c), exact once covered() == W; `covered()` says how many ranks'
/// values it holds. Sums are folded in neighbour order, so replays give
/// the same bits.

#include <terse/core/error.hpp>
#include <terse/core/exchange.hpp>
#include <terse/core/span.hpp>
#include <terse/topology/graph.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace terse {

template <class Transport>
class relay_sum {
 public:
  /// @param transport the ranks of the tree, owned by the caller, outliving this object
  /// @param elements  the length of every vector mixed
  /// @param tree      a static, undirected, connected graph with W - 1 edges
  /// @throws terse::error(errc::invalid_argument) when `tree` is not a tree of transport.size() ranks
  relay_sum(Transport& transport, std::size_t elements, const topology::graph& tree, int tag = 2000)
      : transport_(&transport), elements_(elements), tag_(tag)
  {
    TERSE_EXPECTS(tree.world() == transport.size(), "the tree has " + std::to_string(tree.world()) +
                                                        " ranks but the transport " + std::to_string(transport.size()));
    check_tree(tree);
    topology::rank_round mine;
    tree.round_for(transport.rank(), 0, mine);
    for (const topology::link& l : mine.recvs) {
      neighbours_.push_back(l.peer);
    }
    std::sort(neighbours_.begin(), neighbours_.end());
    const std::size_t d = neighbours_.size();
    sent_.assign(d * elements_, 0.0f);
    received_.assign(d * elements_, 0.0f);
    previous_.assign(d * elements_, 0.0f);
    sent_counts_.assign(d, 0);
    received_counts_.assign(d, 0);
    previous_counts_.assign(d, 0);
  }

  relay_sum(const relay_sum&) = delete;
  relay_sum& operator=(const relay_sum&) = delete;

  /// One step: relays `x` and writes (x + relayed sums) / (1 + relayed counts) into `out`.
  void relay(host_span<const float> x, host_span<float> out)
  {
    TERSE_EXPECTS(x.size() == elements_ && out.size() == elements_,
                  "relay_sum mixes vectors of " + std::to_string(elements_) + " elements");
    exchange(x);
    const float total = static_cast<float>(covered_);
    for (std::size_t i = 0; i < elements_; ++i) {
      out[i] = sum_at(x, i) / total;
    }
  }

  /// One step of RelaySum/Model, in place: x <- (relayed sum + (W - covered) x) / W.
  void mix(host_span<float> x)
  {
    TERSE_EXPECTS(x.size() == elements_, "relay_sum mixes vectors of " + std::to_string(elements_) + " elements");
    exchange(x);
    const auto missing = static_cast<float>(transport_->size() - covered_);
    const auto world = static_cast<float>(transport_->size());
    for (std::size_t i = 0; i < elements_; ++i) {
      x[i] = (sum_at(x, i) + missing * x[i]) / world;
    }
  }

  /// Ranks whose values the last step's result holds (this rank included).
  int covered() const noexcept { return covered_; }
  /// This rank's neighbours in the tree, ascending.
  const std::vector<int>& neighbours() const noexcept { return neighbours_; }
  std::uint64_t step() const noexcept { return step_; }

 private:
  static void check_tree(const topology::graph& g)
  {
    TERSE_EXPECTS(!g.directed() && !g.time_varying(),
                  "RelaySum needs a static, undirected tree (got " + std::string(g.name()) + ")");
    const int w = g.world();
    std::vector<std::vector<int>> adjacent(static_cast<std::size_t>(w));
    std::size_t edges = 0;
    for (int r = 0; r < w; ++r) {
      topology::rank_round round;
      g.round_for(r, 0, round);
      for (const topology::link& l : round.recvs) {
        adjacent[static_cast<std::size_t>(r)].push_back(l.peer);
        edges += l.peer > r ? 1 : 0;
      }
    }
    TERSE_EXPECTS(edges + 1 == static_cast<std::size_t>(w), std::string(g.name()) + " has " + std::to_string(edges) +
                                                                " edges; a tree of " + std::to_string(w) +
                                                                " ranks has " + std::to_string(w - 1));
    std::vector<char> seen(static_cast<std::size_t>(w), 0);
    std::vector<int> stack{0};
    seen[0] = 1;
    int reached = 1;
    while (!stack.empty()) {
      const int r = stack.back();
      stack.pop_back();
      for (const int peer : adjacent[static_cast<std::size_t>(r)]) {
        if (seen[static_cast<std::size_t>(peer)] == 0) {
          seen[static_cast<std::size_t>(peer)] = 1;
          ++reached;
          stack.push_back(peer);
        }
      }
    }
    TERSE_EXPECTS(reached == w, std::string(g.name()) + " is not connected: rank 0 reaches " + std::to_string(reached) +
                                    " of " + std::to_string(w) + " ranks");
  }

  // x + the sums every neighbour relayed this step, folded in neighbour order.
  float sum_at(host_span<const float> x, std::size_t i) const
  {
    float sum = x[i];
    for (std::size_t k = 0; k < neighbours_.size(); ++k) {
      sum += received_[k * elements_ + i];
    }
    return sum;
  }

  void exchange(host_span<const float> x)
  {
    const std::size_t d = neighbours_.size();
    // What arrived last step is what gets relayed now.
    previous_.swap(received_);
    previous_counts_.swap(received_counts_);
    for (std::size_t j = 0; j < d; ++j) {
      float* out = sent_.data() + j * elements_;
      std::copy_n(x.data(), elements_, out);
      std::uint64_t count = 1;
      for (std::size_t k = 0; k < d; ++k) {
        if (k != j) {
          const float* in = previous_.data() + k * elements_;
          for (std::size_t i = 0; i < elements_; ++i) {
            out[i] += in[i];
          }
          count += previous_counts_[k];
        }
      }
      sent_counts_[j] = count;
    }
    sends_.clear();
    recvs_.clear();
    for (std::size_t j = 0; j < d; ++j) {
      const int peer = neighbours_[j];
      sends_.push_back(outgoing<>{peer, bytes(sent_.data() + j * elements_, elements_)});
      sends_.push_back(outgoing<>{peer, bytes(&sent_counts_[j], 1)});
      recvs_.push_back(incoming<>{peer, writable(received_.data() + j * elements_, elements_)});
      recvs_.push_back(incoming<>{peer, writable(&received_counts_[j], 1)});
    }
    if (d != 0) {
      transport_->wait(transport_->start_exchange(host_span<const outgoing<>>(sends_.data(), sends_.size()),
                                                  host_span<const incoming<>>(recvs_.data(), recvs_.size()), tag_));
    }
    std::uint64_t covered = 1;
    for (std::size_t k = 0; k < d; ++k) {
      covered += received_counts_[k];
    }
    TERSE_CHECK(covered <= static_cast<std::uint64_t>(transport_->size()), errc::malformed_payload,
                "relay_sum: neighbours relayed " + std::to_string(covered) + " values in a world of " +
                    std::to_string(transport_->size()));
    covered_ = static_cast<int>(covered);
    ++step_;
  }

  template <class T>
  static host_span<const std::byte> bytes(const T* data, std::size_t count) noexcept
  {
    return host_span<const std::byte>(reinterpret_cast<const std::byte*>(data), count * sizeof(T));
  }
  template <class T>
  static host_span<std::byte> writable(T* data, std::size_t count) noexcept
  {
    return host_span<std::byte>(reinterpret_cast<std::byte*>(data), count * sizeof(T));
  }

  Transport* transport_;
  std::size_t elements_;
  int tag_;
  std::vector<int> neighbours_;
  std::vector<float> sent_, received_, previous_;  ///< per neighbour, elements_ each
  std::vector<std::uint64_t> sent_counts_, received_counts_, previous_counts_;
  std::vector<outgoing<>> sends_;
  std::vector<incoming<>> recvs_;
  int covered_ = 1;
  std::uint64_t step_ = 0;
};

}  // namespace terse
